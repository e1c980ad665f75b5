import { deploymentWindowSchema } from '../../../lib/contracts/deploymentWindow';
import type { DeploymentWindow } from '../../../lib/contracts/deploymentWindow';
import { nextWindowOpening, windowOpen, windowWaitReason } from '../../../lib/pipelines/window';

const w = (over: Partial<DeploymentWindow> & { hours: DeploymentWindow['hours'] }): DeploymentWindow =>
  deploymentWindowSchema.parse({ timeZone: 'Europe/Berlin', days: ['mon', 'tue', 'wed', 'thu'], ...over });
const at = (iso: string) => new Date(iso);
const next = (win: DeploymentWindow, iso: string) => nextWindowOpening(win, at(iso)).toISOString();

describe('deployment window (pure, from a given time)', () => {
  const business = w({ hours: { from: '09:00', to: '17:00' } });

  it('is open inside the hours on a listed day, in local time', () => {
    // Wednesday 2026-06-10 10:00 CEST = 08:00Z.
    expect(windowOpen(business, at('2026-06-10T08:00:00Z'))).toBe(true);
    expect(next(business, '2026-06-10T08:00:00Z')).toBe('2026-06-10T08:00:00.000Z');
    // 17:00 local is closed (to is exclusive); 08:59 local too.
    expect(windowOpen(business, at('2026-06-10T15:00:00Z'))).toBe(false);
    expect(windowOpen(business, at('2026-06-10T06:59:00Z'))).toBe(false);
  });

  it('opens the same morning, the next listed day, or after the weekend', () => {
    expect(next(business, '2026-06-10T05:00:00Z')).toBe('2026-06-10T07:00:00.000Z');
    // Wednesday evening → Thursday 09:00 CEST.
    expect(next(business, '2026-06-10T18:00:00Z')).toBe('2026-06-11T07:00:00.000Z');
    // Thursday evening → Monday (Fri-Sun are not listed).
    expect(next(business, '2026-06-11T16:00:00Z')).toBe('2026-06-15T07:00:00.000Z');
  });

  it('follows daylight saving time: 09:00 local is 08:00Z in winter, 07:00Z in summer', () => {
    // Thursday 2026-03-26 (CET) evening → Monday 2026-03-30 (CEST, after the 29 March switch).
    expect(next(business, '2026-03-26T18:00:00Z')).toBe('2026-03-30T07:00:00.000Z');
    // Thursday 2026-10-22 (CEST) evening → Monday 2026-10-26 (CET, after the 25 October switch).
    expect(next(business, '2026-10-22T18:00:00Z')).toBe('2026-10-26T08:00:00.000Z');
  });

  it('an opening time skipped by the spring-forward jump opens the same distance after it', () => {
    const night = w({ days: ['sun'], hours: { from: '02:30', to: '05:00' } });
    // Sunday 2026-03-29 02:30 does not exist in Berlin (02:00 → 03:00): opens 03:30 CEST = 01:30Z.
    expect(next(night, '2026-03-28T12:00:00Z')).toBe('2026-03-29T01:30:00.000Z');
  });

  it('an opening time that occurs twice in autumn opens at the later one', () => {
    const night = w({ days: ['sun'], hours: { from: '02:30', to: '05:00' } });
    // Sunday 2026-10-25 02:30 occurs at 00:30Z (CEST) and 01:30Z (CET).
    expect(next(night, '2026-10-24T12:00:00Z')).toBe('2026-10-25T01:30:00.000Z');
  });

  it('handles windows over midnight', () => {
    const overnight = w({ days: ['fri'], hours: { from: '22:00', to: '02:00' } });
    // Friday 2026-06-12 23:00 CEST and Saturday 01:00 CEST are inside; Saturday 03:00 is not.
    expect(windowOpen(overnight, at('2026-06-12T21:00:00Z'))).toBe(true);
    expect(windowOpen(overnight, at('2026-06-12T23:00:00Z'))).toBe(true);
    expect(windowOpen(overnight, at('2026-06-13T01:00:00Z'))).toBe(false);
    expect(next(overnight, '2026-06-13T01:00:00Z')).toBe('2026-06-19T20:00:00.000Z');
  });

  it('works across time zones, including ones far from UTC', () => {
    const tokyo = w({ timeZone: 'Asia/Tokyo', days: ['mon'], hours: { from: '09:00', to: '10:00' } });
    // Sunday 2026-06-14 23:30Z is Monday 08:30 in Tokyo → opens Monday 09:00 JST = 00:00Z.
    expect(next(tokyo, '2026-06-14T23:30:00Z')).toBe('2026-06-15T00:00:00.000Z');
    const ny = w({ timeZone: 'America/New_York', days: ['sun'], hours: { from: '01:00', to: '03:00' } });
    // 2026-03-08 is the US spring-forward day; 01:00 EST = 06:00Z.
    expect(next(ny, '2026-03-07T12:00:00Z')).toBe('2026-03-08T06:00:00.000Z');
  });

  it('says what the run is waiting for, in local time', () => {
    expect(windowWaitReason(business, at('2026-06-15T07:00:00Z'))).toBe(
      'waiting for the deployment window (opens Mon 15 Jun, 09:00 Europe/Berlin, 2026-06-15T07:00:00.000Z)',
    );
  });

  it('refuses bad definitions naming the field', () => {
    const bad = (v: unknown) =>
      deploymentWindowSchema.safeParse(v).error?.issues.map((i) => i.path.join('.'));
    expect(bad({ timeZone: 'Mars/Olympus', hours: { from: '09:00', to: '17:00' } })).toEqual(['timeZone']);
    expect(bad({ timeZone: 'UTC', hours: { from: '9:00', to: '17:00' } })).toEqual(['hours.from']);
    expect(bad({ timeZone: 'UTC', hours: { from: '09:00', to: '09:00' } })).toEqual(['hours.to']);
    expect(bad({ timeZone: 'UTC', days: ['mon', 'mon'], hours: { from: '09:00', to: '17:00' } })).toEqual([
      'days',
    ]);
    expect(
      deploymentWindowSchema.parse({ timeZone: 'UTC', hours: { from: '09:00', to: '17:00' } }).days,
    ).toHaveLength(7);
  });
});
