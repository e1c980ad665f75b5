import type { ConsoleAccess } from '../../lib/console';

/** A reviewer signed in through App Service Authentication with the Viewer role. */
export const signedInViewer = (email: string): ConsoleAccess => ({
  who: email,
  canView: true,
  canOperate: false,
  local: false,
  principal: { name: email, identities: [email] },
  roles: ['Sluice.Viewer'],
});

/** The local console: open to everyone on the machine, with its banner. */
export const localConsole: ConsoleAccess = {
  who: 'local',
  canView: true,
  canOperate: true,
  local: true,
  banner: 'Local console',
};
