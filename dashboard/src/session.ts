// The credential lives in this tab's sessionStorage only: never in localStorage or a
// cookie, so it leaves with the tab and is never sent anywhere but the gRPC port.

const KEY = "herald.apiKey";
const TENANT = "herald.tenant";

export interface Session {
  apiKey: string;
  /** Empty: the credential's own tenant, else `default`. */
  tenant: string;
}

export function load(): Session | null {
  const apiKey = sessionStorage.getItem(KEY);
  if (!apiKey) return null;
  return { apiKey, tenant: sessionStorage.getItem(TENANT) ?? "" };
}

export function save(session: Session): void {
  sessionStorage.setItem(KEY, session.apiKey);
  sessionStorage.setItem(TENANT, session.tenant);
}

export function clear(): void {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(TENANT);
}
