/* ScanCharge, the driver's pages: what every page shares. Plain ES2020, no build step, no
 * dependencies (Stripe.js only in Stripe mode). Each page loads this file first, then its own
 * (charger.js, charge.js, receipt.js), both with `defer`, so they run in that order once the
 * page is parsed.
 *
 * Each page renders a <script type="application/json" id="driver-config"> with what the
 * scripts need, including every text in the driver's language (from the gettext catalogues)
 * and the locale to format numbers and dates with. Money is never computed here: amounts
 * are shown exactly as the API formats them. Untrusted text only ever goes in via textContent.
 *
 * What is shared goes on window.ScanCharge; without a readable configuration it stays unset
 * and the page scripts do nothing.
 */
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);

  function readConfig() {
    const configElement = $("driver-config");
    if (!configElement) return null;
    try {
      return JSON.parse(configElement.textContent);
    } catch (err) {
      console.error("ScanCharge: unreadable page configuration", err);
      return null;
    }
  }

  const cfg = readConfig();
  if (!cfg) return;

  // --- The JSON API ---------------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, { code = null, status = 0, network = false } = {}) {
      super(message || code || "request failed");
      this.userMessage = message || null;
      this.code = code;
      this.status = status;
      this.network = network;
    }
  }

  /** fetch() a JSON endpoint of ours; errors become ApiError with the API's own message. */
  async function api(method, path, body) {
    const url = new URL(path, window.location.href);
    if (cfg.lang) url.searchParams.set("lang", cfg.lang);
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url.toString(), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (err) {
      throw new ApiError(null, { network: true });
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const error = data && data.error;
      if (error && typeof error === "object") {
        throw new ApiError(error.message, { code: error.code, status: response.status });
      }
      // The gateway endpoints answer {"error": "<technical text>"}: not for the driver's eyes.
      throw new ApiError(null, { code: "gateway_error", status: response.status });
    }
    return data;
  }

  /** What to tell the driver about a failed request. */
  function messageOf(err, texts) {
    if (err instanceof ApiError) {
      if (err.network) return texts.network;
      if (err.userMessage) return err.userMessage;
    } else {
      console.error(err);
    }
    return texts.generic;
  }

  // --- Links and dialogs ----------------------------------------------------------------

  /** A same-origin path for an absolute URL the API built (it may name another host). */
  function localPath(absolute) {
    try {
      const url = new URL(absolute, window.location.href);
      return url.pathname + url.search;
    } catch (err) {
      return absolute;
    }
  }

  function withLang(path) {
    const url = new URL(path, window.location.href);
    if (cfg.lang) url.searchParams.set("lang", cfg.lang);
    return url.pathname + url.search;
  }

  /** Show a <dialog> and resolve with the value of the button that closed it ("" on Esc). */
  function ask(dialog) {
    return new Promise((resolve) => {
      if (!dialog || typeof dialog.showModal !== "function") {
        resolve(null);
        return;
      }
      dialog.returnValue = "";
      dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
      dialog.showModal();
    });
  }

  // --- Formatting (in the locale the catalogue names) -----------------------------------

  function formatKwh(value) {
    const number = Number(value);
    if (!Number.isFinite(number)) return "–";
    return new Intl.NumberFormat(cfg.locale, {
      minimumFractionDigits: 2,
      maximumFractionDigits: 2,
    }).format(number);
  }

  function formatClock(totalSeconds) {
    if (totalSeconds === null || totalSeconds === undefined) return "–";
    const s = Math.max(0, Math.floor(totalSeconds));
    const pad = (n) => String(n).padStart(2, "0");
    const hours = Math.floor(s / 3600);
    const minutes = Math.floor((s % 3600) / 60);
    return hours > 0 ? `${hours}:${pad(minutes)}:${pad(s % 60)}` : `${pad(minutes)}:${pad(s % 60)}`;
  }

  window.ScanCharge = Object.freeze({
    $, cfg, ApiError, api, messageOf, localPath, withLang, ask, formatKwh, formatClock,
  });
})();
