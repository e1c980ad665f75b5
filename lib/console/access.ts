import type { ClientPrincipal } from '../approval/principal';
import { readClientPrincipal, readClientRoles } from '../approval/principal';
import type { Config } from '../config';
import { LOCAL_BANNER } from './layout';

/**
 * Who may use the console. In Azure the console sits behind App Service Authentication (Microsoft
 * Entra): the platform sets `x-ms-client-principal`, and the app roles `Sluice.Viewer` (read) and
 * `Sluice.Operator` (read, cancel, roll back, run, pause) decide. Locally (CONSOLE_OPEN, the default
 * on a laptop) no one signs in and everyone may do everything; every page says so in a banner.
 *
 * The principal headers are trusted only when the platform owns them (WEBSITE_AUTH_ENABLED, set by
 * App Service when authentication is on) or when the console is open anyway; otherwise anyone
 * could send them.
 */

export const CONSOLE_ROLES = { viewer: 'Sluice.Viewer', operator: 'Sluice.Operator' } as const;

/** The part of a request the console's helpers read (an @azure/functions HttpRequest fits). */
export interface ConsoleRequest {
  method: string;
  url: string;
  headers: { get(name: string): string | null };
}

export interface ConsoleAccess {
  /** Who is asking, for the header and for records ("canceled by …"); `local` when open and unsigned. */
  who: string;
  canView: boolean;
  canOperate: boolean;
  /** True when no one signed in and the console is open (the banner is shown). */
  local: boolean;
  /** The banner every page shows, if any. */
  banner?: string;
  principal?: ClientPrincipal;
  /** The principal's app roles. */
  roles?: string[];
}

/** The name recorded for actions taken on the open local console. */
export const LOCAL_USER = 'local';

export function consoleAccess(
  request: ConsoleRequest,
  services: { config: Pick<Config, 'CONSOLE_OPEN' | 'WEBSITE_AUTH_ENABLED'> },
): ConsoleAccess {
  const { CONSOLE_OPEN: open, WEBSITE_AUTH_ENABLED: platformAuth } = services.config;
  const principal = platformAuth || open ? readClientPrincipal((h) => request.headers.get(h)) : undefined;
  if (principal) {
    const roles = readClientRoles((h) => request.headers.get(h));
    const canOperate = roles.includes(CONSOLE_ROLES.operator);
    const who = principal.name ?? principal.identities[0] ?? principal.id ?? 'unknown';
    return {
      who,
      canView: canOperate || roles.includes(CONSOLE_ROLES.viewer),
      canOperate,
      local: false,
      principal,
      roles,
    };
  }
  if (open) return { who: LOCAL_USER, canView: true, canOperate: true, local: true, banner: LOCAL_BANNER };
  return { who: 'anonymous', canView: false, canOperate: false, local: false };
}
