// The dashboard's entry: reads where the gRPC port is (/ui/config.json), asks for an API
// key when this tab holds none, then routes between the four views by the URL's hash.

import { Code } from "@connectrpc/connect";
import { type Herald, type PageConfig, connect, describeError, isCode, pageConfig } from "./api.js";
import { analyticsView } from "./analytics.js";
import { h, show } from "./dom.js";
import { endpointsView } from "./endpoints.js";
import { Feed } from "./feed.js";
import { liveView } from "./live.js";
import { messageView } from "./message.js";
import * as session from "./session.js";

interface SignedIn {
  herald: Herald;
  tenant: string;
  feed: Feed;
}

const main = document.getElementById("main") as HTMLElement;
const nav = document.getElementById("nav") as HTMLElement;
const signOut = document.getElementById("sign-out") as HTMLButtonElement;
let current: SignedIn | undefined;
let leaveView: () => void = () => {};

function signInForm(config: PageConfig, problem = ""): void {
  nav.hidden = true;
  signOut.hidden = true;
  const key = h("input", { id: "api-key", type: "password", autocomplete: "off", required: true });
  const tenant = h("input", { id: "tenant", placeholder: "the key's own, else default" });
  const error = h("div", { id: "sign-in-error" }, problem ? h("div", { class: "error", role: "alert" }, problem) : null);
  const form = h("form", { class: "sign-in card" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "The key stays in this tab only, and is sent to the gRPC port with every call."),
    h("label", {}, "API key", key),
    h("label", {}, "Tenant (optional)", tenant),
    error,
    h("button", { type: "submit", id: "sign-in" }, "Sign in"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const candidate = { apiKey: key.value.trim(), tenant: tenant.value.trim() };
    // GetHealth needs the read scope: the dashboard shows nothing to a key without it.
    connect(config, candidate.apiKey).getHealth({}).then(
      () => {
        session.save(candidate);
        start(config);
      },
      (e: unknown) => show(error, h("div", { class: "error", role: "alert" },
        isCode(e, Code.Unauthenticated) ? "The key was not accepted." : `Signing in failed: ${describeError(e)}`)),
    );
  });
  show(main, form);
  key.focus();
}

function start(config: PageConfig): void {
  const saved = session.load();
  if (!saved) {
    signInForm(config);
    return;
  }
  const herald = connect(config, saved.apiKey);
  const feed = new Feed(herald, saved.tenant, () => end(config, "The key is no longer accepted: sign in again."));
  current = { herald, tenant: saved.tenant, feed };
  feed.start();
  nav.hidden = false;
  signOut.hidden = false;
  route();
}

function end(config: PageConfig, problem = ""): void {
  leaveView();
  leaveView = () => {};
  current?.feed.stop();
  current = undefined;
  session.clear();
  signInForm(config, problem);
}

function route(): void {
  if (!current) return;
  leaveView();
  leaveView = () => {};
  const [, view = "live", arg = ""] = location.hash.split("/");
  for (const link of nav.querySelectorAll("a")) {
    link.classList.toggle("active", link.dataset["view"] === view);
  }
  const { herald, tenant, feed } = current;
  switch (view) {
    case "endpoints":
      endpointsView(main, herald, tenant);
      break;
    case "message":
      leaveView = messageView(main, herald, feed, tenant, decodeURIComponent(arg));
      break;
    case "analytics":
      analyticsView(main, herald, tenant);
      break;
    default:
      leaveView = liveView(main, feed);
  }
}

pageConfig().then(
  (config) => {
    signOut.addEventListener("click", () => end(config));
    window.addEventListener("hashchange", route);
    start(config);
  },
  (error: unknown) => show(main, h("div", { class: "error", role: "alert" }, `The dashboard cannot start: ${String(error)}`)),
);
