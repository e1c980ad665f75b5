/**
 * The signed-in user as App Service Authentication ("Easy Auth") passes it to the app: the
 * `x-ms-client-principal` header is base64 JSON `{auth_typ, name_typ, role_typ, claims:[{typ,val}]}`.
 * The platform strips these headers from incoming requests and sets them itself, so they can be
 * trusted only when App Service Authentication is enabled (APPROVAL_REQUIRE_SIGNIN documents it).
 */
export interface ClientPrincipal {
  id?: string;
  name?: string;
  idp?: string;
  /** Every identity the principal can be matched on, lower-cased (UPN, e-mail, preferred_username). */
  identities: string[];
}

const IDENTITY_CLAIMS = new Set([
  'preferred_username',
  'email',
  'emails',
  'upn',
  'unique_name',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
]);
const OID_CLAIMS = ['http://schemas.microsoft.com/identity/claims/objectidentifier', 'oid'];

type HeaderGetter = (name: string) => string | null | undefined;

export function readClientPrincipal(header: HeaderGetter): ClientPrincipal | undefined {
  const encoded = header('x-ms-client-principal');
  const nameHeader = header('x-ms-client-principal-name') ?? undefined;
  const idHeader = header('x-ms-client-principal-id') ?? undefined;
  const idpHeader = header('x-ms-client-principal-idp') ?? undefined;
  const identities = new Set<string>();
  let id = idHeader;
  let name = nameHeader;
  let idp = idpHeader;
  if (encoded) {
    try {
      const p = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as {
        auth_typ?: string;
        name_typ?: string;
        claims?: { typ?: string; val?: string }[];
      };
      idp ??= p.auth_typ;
      for (const c of p.claims ?? []) {
        if (typeof c?.typ !== 'string' || typeof c.val !== 'string') continue;
        if (IDENTITY_CLAIMS.has(c.typ) || c.typ === p.name_typ) identities.add(c.val.trim().toLowerCase());
        if (c.typ === p.name_typ) name ??= c.val;
        if (OID_CLAIMS.includes(c.typ)) id ??= c.val;
      }
    } catch {
      // A malformed header identifies no one.
    }
  }
  if (nameHeader) identities.add(nameHeader.trim().toLowerCase());
  if (identities.size === 0 && !id) return undefined;
  return {
    ...(id ? { id } : {}),
    ...(name ? { name } : {}),
    ...(idp ? { idp } : {}),
    identities: [...identities],
  };
}

/**
 * The principal only when the platform owns the headers: App Service Authentication is on
 * (`WEBSITE_AUTH_ENABLED`, set by App Service itself, never by us). APPROVAL_REQUIRE_SIGNIN alone
 * says what we want, not what the platform does: with authentication off, anyone can send
 * `x-ms-client-principal` and be whoever they write in it.
 */
export function platformPrincipal(header: HeaderGetter, platformAuth: boolean): ClientPrincipal | undefined {
  return platformAuth ? readClientPrincipal(header) : undefined;
}

/** The requester recorded when the platform names no one (see `requesterOf`). */
export const ANONYMOUS_REQUESTER = 'anonymous';

/**
 * Who made a request, as the platform says: the App Service Authentication principal (its name, or
 * else its first identity or object id). Azure Functions does not tell a Node.js app which function
 * key authenticated a request (the host keeps the key id in its own .NET claims principal), so a
 * key-only caller is `anonymous`. Never a body field or a client-chosen header such as
 * `x-sluice-client`, which only says which tool sent the request.
 */
export function requesterOf(header: HeaderGetter): string {
  const p = readClientPrincipal(header);
  return p?.name ?? p?.identities[0] ?? p?.id ?? ANONYMOUS_REQUESTER;
}

const ROLE_CLAIMS = ['roles', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role'];

/**
 * The app roles App Service Authentication says the principal has (claims of its `role_typ`, or
 * `roles`), as written, e.g. `Sluice.Operator` (the console's roles, lib/console/access.ts). None
 * when the header is absent or malformed.
 */
export function readClientRoles(header: HeaderGetter): string[] {
  const encoded = header('x-ms-client-principal');
  if (!encoded) return [];
  try {
    const p = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as {
      role_typ?: string;
      claims?: { typ?: string; val?: string }[];
    };
    const roles = new Set<string>();
    for (const c of p.claims ?? []) {
      if (typeof c?.typ !== 'string' || typeof c.val !== 'string') continue;
      if (c.typ === p.role_typ || ROLE_CLAIMS.includes(c.typ)) roles.add(c.val);
    }
    return [...roles];
  } catch {
    return [];
  }
}
