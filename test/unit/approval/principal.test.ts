import { ANONYMOUS_REQUESTER, readClientPrincipal, requesterOf } from '../../../lib/approval/principal';

const encode = (p: unknown) => Buffer.from(JSON.stringify(p)).toString('base64');
const headers = (h: Record<string, string>) => (name: string) => h[name];

describe('App Service client principal', () => {
  it('collects every identity claim (name, UPN, e-mail, preferred_username) in lower case, and the object id', () => {
    const p = readClientPrincipal(
      headers({
        'x-ms-client-principal': encode({
          auth_typ: 'aad',
          name_typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
          claims: [
            { typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name', val: 'Alice Example' },
            { typ: 'preferred_username', val: 'Alice@Contoso.com' },
            {
              typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn',
              val: 'alice@contoso.onmicrosoft.com',
            },
            { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: 'oid-1' },
            { typ: 'roles', val: 'Admin' },
          ],
        }),
      }),
    );
    expect(p).toEqual({
      id: 'oid-1',
      name: 'Alice Example',
      idp: 'aad',
      identities: ['alice example', 'alice@contoso.com', 'alice@contoso.onmicrosoft.com'],
    });
  });

  it('uses the -name/-id/-idp headers, and treats a malformed principal as no one', () => {
    expect(
      readClientPrincipal(
        headers({ 'x-ms-client-principal-name': 'Bob@Contoso.com', 'x-ms-client-principal-id': 'oid-2' }),
      ),
    ).toEqual({
      id: 'oid-2',
      name: 'Bob@Contoso.com',
      identities: ['bob@contoso.com'],
    });
    expect(readClientPrincipal(headers({ 'x-ms-client-principal': '%%%not-base64-json' }))).toBeUndefined();
    expect(readClientPrincipal(headers({}))).toBeUndefined();
  });
});

describe('requesterOf: who the platform says called (issue 13 item 3)', () => {
  it('is the App Service principal, never a client-chosen header', () => {
    expect(
      requesterOf(
        headers({
          'x-ms-client-principal-name': 'Alice@Example.com',
          'x-sluice-user': 'bob@example.com',
          'x-sluice-client': 'cli',
        }),
      ),
    ).toBe('Alice@Example.com');
  });

  it('is anonymous for a caller the platform does not name (a function key, or keys off)', () => {
    expect(requesterOf(headers({ 'x-sluice-user': 'bob@example.com', 'x-sluice-client': 'cli' }))).toBe(
      ANONYMOUS_REQUESTER,
    );
  });
});
