/** The console's shell, for its pages and functions/console*.ts (docs/console.md). */
export { markup, raw, escapeHtml, SafeHtml } from '../approval/html';
export { assetUrl, consoleAsset, type ConsoleAsset } from './assets';
export { consoleAccess, CONSOLE_ROLES, LOCAL_USER, type ConsoleAccess, type ConsoleRequest } from './access';
export { csrfField, issueCsrf, verifyCsrf, CSRF_FIELD, type ConsoleCookie, type CsrfGrant } from './csrf';
export { duration, fmt, statusChip, when, words } from './format';
export { runPagePath } from './paths';
export {
  CONSOLE_CSP,
  CONSOLE_HEADERS,
  LOCAL_BANNER,
  messagePage,
  renderPage,
  type ConsolePage,
  type ConsoleSection,
  type PageInput,
} from './layout';
