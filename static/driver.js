/* ScanCharge, the driver's pages: the charger page (choose and pay), the live charge, the
 * receipt. Plain ES2020, no build step, no dependencies (Stripe.js only in Stripe mode).
 *
 * Each page renders a <script type="application/json" id="driver-config"> with what this file
 * needs, including every text in the driver's language (from the gettext catalogues) and the
 * locale to format numbers and dates with. Money is never computed here: amounts
 * are shown exactly as the API formats them. Untrusted text only ever goes in via textContent.
 */
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);

  const configElement = $("driver-config");
  if (!configElement) return;
  let cfg;
  try {
    cfg = JSON.parse(configElement.textContent);
  } catch (err) {
    console.error("ScanCharge: unreadable page configuration", err);
    return;
  }

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

  // --- The charger page -----------------------------------------------------------------

  function chargerPage() {
    const form = $("pay-form");
    if (!form) return; // the charger cannot be started: the page says why, nothing to do
    const T = cfg.texts;
    const kind = cfg.payment.kind;
    const payButton = $("pay-button");
    const errorBox = $("pay-error");
    const progress = $("pay-progress");
    const holdSentence = $("hold-sentence");
    const stopSentence = $("stop-sentence");
    const maxInput = $("max-amount");
    const capMessage = $("max-amount-message");
    const emailInput = $("email");
    const cardInput = $("card-number");

    let charge = null; // the charge created for this page, with its `payment`
    // The cancel of a charge given up: awaited before the next POST, which the server would
    // otherwise refuse while the old charge is still unpaid (one open charge per charger).
    let cancelling = Promise.resolve();
    let chargeKey = null; // the choice it was created for
    let navigating = false;
    let stripeState = null;

    const selected = () =>
      form.querySelector('input[name="connector_id"]:checked') ||
      form.querySelector('input[name="connector_id"]');

    function showError(message) {
      errorBox.textContent = message || "";
      errorBox.hidden = !message;
    }

    function setBusy(busy, text) {
      payButton.disabled = busy;
      payButton.setAttribute("aria-busy", busy ? "true" : "false");
      progress.textContent = text || "";
    }

    // The hold and where charging stops follow the chosen connector and the cap typed:
    // the server works them out (GET /api/v1/limits), this page only shows its sentences.
    let limits = null; // the last answer for what is typed now
    let limitsFor = "";
    let limitTimer = null;

    function showLimits(answer) {
      limits = answer;
      holdSentence.textContent = answer.hold_sentence;
      stopSentence.textContent = answer.stop_sentence;
      const message = answer.cap && answer.cap.message;
      capMessage.textContent = message || "";
      capMessage.hidden = !message;
      capMessage.className = answer.cap && answer.cap.state === "too_low" ? "small notice notice-error" : "small";
      maxInput.setAttribute("aria-invalid", answer.cap && answer.cap.state === "too_low" ? "true" : "false");
      if (stripeState && answer.hold) stripeState.elements.update({ amount: answer.hold.amount_minor });
    }

    async function refreshLimits() {
      const connector = selected();
      const typed = maxInput.value.trim();
      const key = `${connector ? connector.value : ""}|${typed}`;
      if (key === limitsFor) return;
      limitsFor = key;
      if (!typed && connector && connector.dataset.hold) {
        holdSentence.textContent = connector.dataset.hold;
        stopSentence.textContent = connector.dataset.stop;
      }
      const query = new URLSearchParams({ evse_id: cfg.evse_id, max_amount: typed });
      if (connector) query.set("connector_id", connector.value);
      try {
        const answer = await api("GET", `/api/v1/limits?${query}`);
        if (key === limitsFor) showLimits(answer);
      } catch (err) {
        if (key !== limitsFor) return;
        limits = { cap: { state: "invalid" } };
        capMessage.textContent = messageOf(err, T);
        capMessage.hidden = false;
        capMessage.className = "small notice notice-error";
        maxInput.setAttribute("aria-invalid", "true");
      }
    }

    function limitsSoon() {
      if (limitTimer !== null) clearTimeout(limitTimer);
      limitTimer = setTimeout(() => {
        limitTimer = null;
        refreshLimits();
      }, 250);
    }
    form.addEventListener("change", (event) => {
      if (event.target.name === "connector_id") refreshLimits();
    });
    if (maxInput) maxInput.addEventListener("input", limitsSoon);

    /** A cap the server already said no to is not sent again: its message is shown. */
    function capRefused() {
      const state = limits && limits.cap && limits.cap.state;
      if (state !== "too_low" && state !== "invalid") return false;
      showError(capMessage.textContent);
      maxInput.focus();
      return true;
    }

    // Demo test cards: tap to use; the one in the field shows as pressed.
    const testCards = Array.from(document.querySelectorAll(".test-card"));
    const digitsOf = (text) => text.replace(/\D/g, "");
    function markTestCard() {
      for (const button of testCards) {
        const same = digitsOf(button.dataset.card) === digitsOf(cardInput.value);
        button.setAttribute("aria-pressed", same ? "true" : "false");
      }
    }
    for (const button of testCards) {
      button.addEventListener("click", () => {
        cardInput.value = button.dataset.card;
        markTestCard();
        showError("");
        cardInput.focus();
      });
    }
    if (cardInput) cardInput.addEventListener("input", markTestCard);

    /** The charge for the current choice: created once, reused when a card is declined. */
    async function ensureCharge() {
      const connector = selected();
      const email = emailInput.value.trim();
      const maxAmount = maxInput ? maxInput.value.trim() : "";
      const key = `${connector ? connector.value : ""}|${email}|${maxAmount}`;
      if (charge && chargeKey !== key) {
        // The driver changed their mind after a declined card: give the old one up.
        const old = charge;
        charge = null;
        cancelling = api("POST", `/api/v1/charges/${encodeURIComponent(old.id)}/cancel`, {})
          .catch(() => {});
      }
      if (!charge) {
        await cancelling;
        const body = { evse_id: cfg.evse_id, language: cfg.lang };
        if (connector) body.connector_id = connector.value;
        if (email) body.email = email;
        if (maxAmount) body.max_amount = maxAmount; // the server reads it; no money maths here
        charge = await api("POST", "/api/v1/charges", body);
        chargeKey = key;
        document.body.dataset.paying = "1"; // the status watcher must not reload from now on
      }
      return charge;
    }

    function goToCharge(created) {
      navigating = true;
      setBusy(true, T.paid);
      window.location.assign(withLang(localPath(created.page_url)));
    }

    // -- Demo gateway: what Stripe.js does, against /payments/demo/confirm --

    function demoMessage(declineMessage, code) {
      // The intent refuses every card after a few declines (as Stripe's code says).
      if (code === "card_decline_rate_limit_exceeded") return T.too_many_declines;
      if (!declineMessage || declineMessage === "Your card was declined.") return T.declined;
      if (declineMessage === "Authentication failed.") return T.auth_failed;
      if (declineMessage.startsWith("Demo mode")) return T.unknown_card;
      return declineMessage;
    }

    async function payDemo() {
      const digits = digitsOf(cardInput.value);
      if (!digits) {
        showError(T.card_missing);
        cardInput.focus();
        return;
      }
      setBusy(true, T.paying);
      for (let attempt = 0; attempt < 2; attempt += 1) {
        const created = await ensureCharge();
        let result;
        try {
          result = await api("POST", "/payments/demo/confirm", {
            payment_intent: created.payment.payment_intent,
            client_secret: created.payment.client_secret,
            card_number: digits,
          });
        } catch (err) {
          if (err instanceof ApiError && err.code === "gateway_error") charge = null;
          throw err;
        }
        if (result.status === "canceled") {
          charge = null; // the unpaid charge expired meanwhile: start over with a new one
          continue;
        }
        if (result.status === "requires_action") {
          progress.textContent = T.auth_waiting;
          const amount = $("auth-amount");
          if (amount && created.hold) amount.textContent = created.hold.formatted;
          const answer = await ask($("auth-dialog"));
          progress.textContent = T.paying;
          result = await api("POST", "/payments/demo/confirm", {
            action: "authenticate",
            payment_intent: created.payment.payment_intent,
            client_secret: created.payment.client_secret,
            approve: answer === "approve",
          });
        }
        if (["requires_capture", "succeeded", "processing"].includes(result.status)) {
          goToCharge(created);
        } else {
          showError(demoMessage(result.decline_message, result.code));
        }
        return;
      }
      showError(T.restart);
    }

    // -- Stripe: the Payment Element and the Express Checkout Element (Apple Pay, Google
    // Pay) are shown with the page, before any PaymentIntent exists (Stripe's deferred
    // intent flow); the charge and its PaymentIntent are created when the driver confirms.

    function holdMinor() {
      if (limits && limits.hold) return limits.hold.amount_minor;
      const connector = selected();
      return Number(connector && connector.dataset.holdMinor);
    }

    function afterStripeConfirm(created, result) {
      if (result.error) {
        showError(result.error.message || T.generic);
        return false;
      }
      const intent = result.paymentIntent;
      if (intent && ["requires_capture", "succeeded", "processing"].includes(intent.status)) {
        goToCharge(created);
        return true;
      }
      const lastError = intent && intent.last_payment_error;
      showError((lastError && lastError.message) || T.declined);
      return false;
    }

    /** elements.submit() first (it checks the form and asks the wallet), then our charge
     * and its PaymentIntent, then Stripe confirms it with what the Elements collected. */
    async function confirmStripe(onFailure) {
      const { stripe, elements } = stripeState;
      const submitted = await elements.submit();
      if (submitted.error) {
        showError(submitted.error.message || T.generic);
        if (onFailure) onFailure();
        return;
      }
      const created = await ensureCharge();
      const result = await stripe.confirmPayment({
        elements,
        clientSecret: created.payment.client_secret,
        confirmParams: { return_url: created.payment.return_url },
        redirect: "if_required",
      });
      if (!afterStripeConfirm(created, result) && onFailure) onFailure();
    }

    function mountStripe() {
      const connector = selected();
      const stripe = window.Stripe(cfg.payment.publishable_key, { locale: cfg.lang });
      const elements = stripe.elements({
        mode: "payment",
        amount: holdMinor(),
        currency: String(connector.dataset.currency || "SEK").toLowerCase(),
        captureMethod: cfg.payment.capture_method || "manual",
        paymentMethodTypes: cfg.payment.payment_method_types || ["card"],
        locale: cfg.lang,
        appearance: {
          theme: "stripe",
          variables: { colorPrimary: "#06613f", borderRadius: "10px", fontSizeBase: "16px" },
        },
      });
      // Apple Pay and Google Pay live in the Express Checkout Element, above the card form.
      const payment = elements.create("payment", {
        layout: "tabs",
        wallets: { applePay: "never", googlePay: "never" },
      });
      const express = elements.create("expressCheckout", { buttonHeight: 48 });
      const expressBox = $("express-checkout-element");
      expressBox.hidden = false;
      express.on("ready", (event) => {
        const methods = event && event.availablePaymentMethods;
        expressBox.hidden = !methods || !Object.values(methods).some(Boolean);
      });
      express.on("confirm", async (event) => {
        showError("");
        if (capRefused()) {
          event.paymentFailed({ reason: "fail" });
          return;
        }
        setBusy(true, T.paying);
        try {
          await confirmStripe(() => event.paymentFailed({ reason: "fail" }));
        } catch (err) {
          event.paymentFailed({ reason: "fail" });
          showError(messageOf(err, T));
        } finally {
          if (!navigating) setBusy(false);
        }
      });
      express.mount(expressBox);
      $("payment-element").hidden = false;
      payment.mount($("payment-element"));
      stripeState = { stripe, elements, payment, express };
    }

    async function payStripe() {
      if (!stripeState) {
        showError(T.stripe_missing);
        return;
      }
      setBusy(true, T.paying);
      await confirmStripe(null);
    }

    if (kind === "stripe") {
      if (typeof window.Stripe === "function") mountStripe();
      else showError(T.stripe_missing);
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (payButton.disabled || navigating) return;
      showError("");
      if (limitTimer !== null) {
        clearTimeout(limitTimer);
        limitTimer = null;
        await refreshLimits();
      }
      if (capRefused()) return;
      try {
        if (kind === "stripe") await payStripe();
        else await payDemo();
      } catch (err) {
        showError(messageOf(err, T));
      } finally {
        if (!navigating) setBusy(false);
      }
    });
  }

  // --- The live charge ------------------------------------------------------------------

  const POLL_MS = 2000;
  const MAX_BACKOFF_MS = 30000;

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

  function chargePage() {
    const T = cfg.texts;
    const FINAL = new Set(cfg.final_statuses);
    const RETRY = new Set(cfg.retry_statuses);
    const el = {
      statusText: $("status-text"),
      dot: $("status-dot"),
      connection: $("connection"),
      failure: $("failure"),
      energy: $("energy"),
      elapsed: $("elapsed"),
      cost: $("cost"),
      costLabel: $("cost-label"),
      hold: $("hold"),
      captured: $("captured"),
      capturedLine: $("captured-line"),
      limitLine: $("limit-line"),
      limitText: $("limit-text"),
      limitBar: $("limit-bar"),
      endLine: $("end-line"),
      endReason: $("end-reason"),
      endCharged: $("end-charged"),
      stop: $("stop-button"),
      cancel: $("cancel-button"),
      receipt: $("receipt-link"),
      retry: $("retry-link"),
      actionError: $("action-error"),
    };
    let current = cfg.charge;
    let receivedAt = Date.now();
    let timer = null;
    let failures = 0;
    let inFlight = false;
    const path = `/api/v1/charges/${encodeURIComponent(current.id)}`;

    const done = (c) => FINAL.has(c.status) && (c.status !== "CAPTURED" || Boolean(c.receipt_url));
    const running = (c) => c.status === "CHARGING" || c.status === "STOPPING";

    function setText(node, text) {
      if (node && node.textContent !== text) node.textContent = text;
    }

    function renderElapsed() {
      let seconds = current.elapsed_seconds;
      if (seconds !== null && seconds !== undefined && running(current)) {
        seconds += (Date.now() - receivedAt) / 1000;
      }
      setText(el.elapsed, formatClock(seconds));
    }

    function render(c) {
      setText(el.statusText, c.status_text);
      el.dot.className = `dot dot-${c.status.toLowerCase()}`;
      setText(el.energy, formatKwh(c.energy_kwh));
      renderElapsed();
      setText(el.cost, c.cost_so_far ? c.cost_so_far.formatted : "–");
      setText(el.costLabel, FINAL.has(c.status) || c.status === "ENDED" ? T.cost_final : T.cost_so_far);
      setText(el.hold, c.hold ? c.hold.formatted : "–");
      el.capturedLine.hidden = !c.captured;
      if (c.captured) setText(el.captured, c.captured.formatted);
      // How close the cost is to where charging stops by itself; then why it ended.
      el.limitLine.hidden = !c.limit;
      if (c.limit) {
        setText(el.limitText, c.limit.text);
        el.limitBar.value = c.limit.percent;
      }
      el.endLine.hidden = !c.end;
      if (c.end) {
        setText(el.endReason, c.end.message);
        el.endReason.dataset.reason = c.end.reason;
        setText(el.endCharged, c.end.charged || "");
      }

      if (c.failure) {
        setText(el.failure, c.failure.message);
        el.failure.hidden = false;
      } else if (!(cfg.redirect_failed && c.status === "CREATED")) {
        el.failure.hidden = true;
      }
      el.stop.hidden = !c.can_stop;
      el.cancel.hidden = !c.can_cancel;
      if (c.receipt_url) {
        el.receipt.href = localPath(c.receipt_url);
        el.receipt.hidden = false;
      } else {
        el.receipt.hidden = true;
      }
      el.retry.hidden = !(RETRY.has(c.status) || (cfg.redirect_failed && c.status === "CREATED"));
    }

    function update(c) {
      current = c;
      receivedAt = Date.now();
      render(c);
    }

    function schedule(ms) {
      if (timer !== null) clearTimeout(timer);
      timer = done(current) ? null : setTimeout(poll, ms);
    }

    async function poll() {
      timer = null;
      if (inFlight) return;
      inFlight = true;
      try {
        update(await api("GET", path));
        failures = 0;
        el.connection.hidden = true;
      } catch (err) {
        failures += 1;
        setText(el.connection, T.connection_lost);
        el.connection.hidden = false;
      } finally {
        inFlight = false;
      }
      schedule(failures ? Math.min(POLL_MS * 2 ** failures, MAX_BACKOFF_MS) : POLL_MS);
    }

    function showActionError(message) {
      setText(el.actionError, message || "");
      el.actionError.hidden = !message;
    }

    async function act(button, kindPath, busyText) {
      showActionError("");
      button.disabled = true;
      const label = button.textContent;
      button.textContent = busyText;
      try {
        update(await api("POST", `${path}/${kindPath}`, {}));
      } catch (err) {
        showActionError(messageOf(err, T));
      } finally {
        button.disabled = false;
        button.textContent = label;
      }
      schedule(POLL_MS);
    }

    el.stop.addEventListener("click", async () => {
      const dialog = $("stop-dialog");
      const answer = await ask(dialog);
      if (answer === null ? window.confirm(dialog.querySelector("h2").textContent) : answer === "stop") {
        await act(el.stop, "stop", T.stopping);
      }
    });
    el.cancel.addEventListener("click", () => act(el.cancel, "cancel", T.cancelling));

    // Back on the page (phone unlocked, network back): look now rather than at the next tick.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && !done(current)) poll();
    });
    window.addEventListener("online", () => {
      if (!done(current)) poll();
    });

    setInterval(() => {
      if (running(current)) renderElapsed();
    }, 1000);

    render(current);
    schedule(POLL_MS);
  }

  // --- The receipt ----------------------------------------------------------------------

  function receiptPage() {
    // Times are printed by the server in the location's time zone, with the zone's name.
    const print = $("print-button");
    if (print) {
      print.hidden = false;
      print.addEventListener("click", () => window.print());
    }
  }

  // The charger's status, kept live while the driver looks at the page: a charger that
  // becomes free (or taken) changes what the page offers, so the page is rendered again,
  // unless the driver has started paying.
  function watchCharger() {
    const badge = $("evse-status");
    if (!badge || !cfg.evse_id) return;
    const every = 5000;
    async function check() {
      if (document.hidden) return;
      let info;
      try {
        info = await api("GET", `/api/v1/chargers/${cfg.evse_id}`);
      } catch (err) {
        return; // a passing network problem: the next check tries again
      }
      badge.textContent = info.status_text;
      badge.className = `status status-${String(info.status).toLowerCase()}`;
      if (info.available !== cfg.available && !document.body.dataset.paying) {
        window.location.reload();
      }
    }
    window.setInterval(check, every);
  }

  const pages = { charger: chargerPage, charge: chargePage, receipt: receiptPage };
  if (pages[cfg.page]) pages[cfg.page]();
  if (cfg.page === "charger") {
    watchCharger();
    // Back to a charger page the browser kept in memory (bfcache): load it again, so the
    // server decides what it shows now; this phone's charge may be running there since.
    window.addEventListener("pageshow", (event) => {
      if (event.persisted) window.location.reload();
    });
  }
})();
