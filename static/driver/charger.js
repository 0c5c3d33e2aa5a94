/* ScanCharge, the charger page: choose a connector, maybe a cap, pay, go to the live charge.
 * Needs common.js first. Two ways to pay: the demo gateway (a card number, checked by
 * /payments/demo/confirm) and Stripe (the Payment Element and the Express Checkout Element).
 * The charger's status is watched while the page is open.
 */
(() => {
  "use strict";

  const SC = window.ScanCharge;
  if (!SC || SC.cfg.page !== "charger") return;
  const { $, cfg, ApiError, api, messageOf, localPath, withLang, ask } = SC;
  const T = cfg.texts;

  const el = {
    form: $("pay-form"),
    payButton: $("pay-button"),
    errorBox: $("pay-error"),
    progress: $("pay-progress"),
    holdSentence: $("hold-sentence"),
    stopSentence: $("stop-sentence"),
    maxInput: $("max-amount"),
    capMessage: $("max-amount-message"),
    emailInput: $("email"),
    cardInput: $("card-number"),
  };

  const state = {
    charge: null, // the charge created for this page, with its `payment`
    chargeKey: null, // the choice it was created for
    // The cancel of a charge given up: awaited before the next POST, which the server would
    // otherwise refuse while the old charge is still unpaid (one open charge per charger).
    cancelling: Promise.resolve(),
    navigating: false,
    stripe: null, // { stripe, elements, payment, express } once mounted
    limits: null, // the last /api/v1/limits answer for what is typed now
    limitsFor: "",
    limitTimer: null,
  };

  const selected = () =>
    el.form.querySelector('input[name="connector_id"]:checked') ||
    el.form.querySelector('input[name="connector_id"]');

  const digitsOf = (text) => text.replace(/\D/g, "");

  function showError(message) {
    el.errorBox.textContent = message || "";
    el.errorBox.hidden = !message;
  }

  function setBusy(busy, text) {
    el.payButton.disabled = busy;
    el.payButton.setAttribute("aria-busy", busy ? "true" : "false");
    el.progress.textContent = text || "";
  }

  // --- The hold and the cap -------------------------------------------------------------
  // The hold and where charging stops follow the chosen connector and the cap typed:
  // the server works them out (GET /api/v1/limits), this page only shows its sentences.

  function showCapProblem(message) {
    el.capMessage.textContent = message;
    el.capMessage.hidden = false;
    el.capMessage.className = "small notice notice-error";
    el.maxInput.setAttribute("aria-invalid", "true");
  }

  function showLimits(answer) {
    state.limits = answer;
    el.holdSentence.textContent = answer.hold_sentence;
    el.stopSentence.textContent = answer.stop_sentence;
    const message = answer.cap && answer.cap.message;
    const tooLow = Boolean(answer.cap && answer.cap.state === "too_low");
    el.capMessage.textContent = message || "";
    el.capMessage.hidden = !message;
    el.capMessage.className = tooLow ? "small notice notice-error" : "small";
    el.maxInput.setAttribute("aria-invalid", tooLow ? "true" : "false");
    if (state.stripe && answer.hold) state.stripe.elements.update({ amount: answer.hold.amount_minor });
  }

  async function refreshLimits() {
    const connector = selected();
    const typed = el.maxInput.value.trim();
    const key = `${connector ? connector.value : ""}|${typed}`;
    if (key === state.limitsFor) return;
    state.limitsFor = key;
    if (!typed && connector && connector.dataset.hold) {
      el.holdSentence.textContent = connector.dataset.hold;
      el.stopSentence.textContent = connector.dataset.stop;
    }
    const query = new URLSearchParams({ evse_id: cfg.evse_id, max_amount: typed });
    if (connector) query.set("connector_id", connector.value);
    try {
      const answer = await api("GET", `/api/v1/limits?${query}`);
      if (key === state.limitsFor) showLimits(answer);
    } catch (err) {
      if (key !== state.limitsFor) return;
      state.limits = { cap: { state: "invalid" } };
      showCapProblem(messageOf(err, T));
    }
  }

  function limitsSoon() {
    if (state.limitTimer !== null) clearTimeout(state.limitTimer);
    state.limitTimer = setTimeout(() => {
      state.limitTimer = null;
      refreshLimits();
    }, 250);
  }

  /** Typing in the cap waits for a pause; a half-typed cap must not be paid with. */
  async function flushLimits() {
    if (state.limitTimer === null) return;
    clearTimeout(state.limitTimer);
    state.limitTimer = null;
    await refreshLimits();
  }

  /** A cap the server already said no to is not sent again: its message is shown. */
  function capRefused() {
    const capState = state.limits && state.limits.cap && state.limits.cap.state;
    if (capState !== "too_low" && capState !== "invalid") return false;
    showError(el.capMessage.textContent);
    el.maxInput.focus();
    return true;
  }

  function setupConnectorAndCap() {
    el.form.addEventListener("change", (event) => {
      if (event.target.name === "connector_id") refreshLimits();
    });
    if (el.maxInput) el.maxInput.addEventListener("input", limitsSoon);
  }

  // --- Demo test cards: tap to use; the one in the field shows as pressed ---------------

  function setupTestCards() {
    const testCards = Array.from(document.querySelectorAll(".test-card"));
    function markTestCard() {
      for (const button of testCards) {
        const same = digitsOf(button.dataset.card) === digitsOf(el.cardInput.value);
        button.setAttribute("aria-pressed", same ? "true" : "false");
      }
    }
    for (const button of testCards) {
      button.addEventListener("click", () => {
        el.cardInput.value = button.dataset.card;
        markTestCard();
        showError("");
        el.cardInput.focus();
      });
    }
    if (el.cardInput) el.cardInput.addEventListener("input", markTestCard);
  }

  // --- The charge -----------------------------------------------------------------------

  function giveUpCharge() {
    const old = state.charge;
    state.charge = null;
    state.cancelling = api("POST", `/api/v1/charges/${encodeURIComponent(old.id)}/cancel`, {})
      .catch(() => {});
  }

  /** The charge for the current choice: created once, reused when a card is declined. */
  async function ensureCharge() {
    const connector = selected();
    const email = el.emailInput.value.trim();
    const maxAmount = el.maxInput ? el.maxInput.value.trim() : "";
    const key = `${connector ? connector.value : ""}|${email}|${maxAmount}`;
    // The driver changed their mind after a declined card: give the old one up.
    if (state.charge && state.chargeKey !== key) giveUpCharge();
    if (!state.charge) {
      await state.cancelling;
      const body = { evse_id: cfg.evse_id, language: cfg.lang };
      if (connector) body.connector_id = connector.value;
      if (email) body.email = email;
      if (maxAmount) body.max_amount = maxAmount; // the server reads it; no money maths here
      state.charge = await api("POST", "/api/v1/charges", body);
      state.chargeKey = key;
      document.body.dataset.paying = "1"; // the status watcher must not reload from now on
    }
    return state.charge;
  }

  function goToCharge(created) {
    state.navigating = true;
    setBusy(true, T.paid);
    window.location.assign(withLang(localPath(created.page_url)));
  }

  const AUTHORISED = ["requires_capture", "succeeded", "processing"];

  // --- Demo gateway: what Stripe.js does, against /payments/demo/confirm ----------------

  function demoMessage(declineMessage, code) {
    // The intent refuses every card after a few declines (as Stripe's code says).
    if (code === "card_decline_rate_limit_exceeded") return T.too_many_declines;
    if (!declineMessage || declineMessage === "Your card was declined.") return T.declined;
    if (declineMessage === "Authentication failed.") return T.auth_failed;
    if (declineMessage.startsWith("Demo mode")) return T.unknown_card;
    return declineMessage;
  }

  async function confirmDemo(created, digits) {
    try {
      return await api("POST", "/payments/demo/confirm", {
        payment_intent: created.payment.payment_intent,
        client_secret: created.payment.client_secret,
        card_number: digits,
      });
    } catch (err) {
      if (err instanceof ApiError && err.code === "gateway_error") state.charge = null;
      throw err;
    }
  }

  /** The demo's 3-D Secure: a dialog instead of the bank's page. */
  async function authenticateDemo(created) {
    el.progress.textContent = T.auth_waiting;
    const amount = $("auth-amount");
    if (amount && created.hold) amount.textContent = created.hold.formatted;
    const answer = await ask($("auth-dialog"));
    el.progress.textContent = T.paying;
    return api("POST", "/payments/demo/confirm", {
      action: "authenticate",
      payment_intent: created.payment.payment_intent,
      client_secret: created.payment.client_secret,
      approve: answer === "approve",
    });
  }

  async function payDemo() {
    const digits = digitsOf(el.cardInput.value);
    if (!digits) {
      showError(T.card_missing);
      el.cardInput.focus();
      return;
    }
    setBusy(true, T.paying);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const created = await ensureCharge();
      let result = await confirmDemo(created, digits);
      if (result.status === "canceled") {
        state.charge = null; // the unpaid charge expired meanwhile: start over with a new one
        continue;
      }
      if (result.status === "requires_action") result = await authenticateDemo(created);
      if (AUTHORISED.includes(result.status)) goToCharge(created);
      else showError(demoMessage(result.decline_message, result.code));
      return;
    }
    showError(T.restart);
  }

  // --- Stripe ---------------------------------------------------------------------------
  // The Payment Element and the Express Checkout Element (Apple Pay, Google Pay) are shown
  // with the page, before any PaymentIntent exists (Stripe's deferred intent flow); the
  // charge and its PaymentIntent are created when the driver confirms.

  function holdMinor() {
    if (state.limits && state.limits.hold) return state.limits.hold.amount_minor;
    const connector = selected();
    return Number(connector && connector.dataset.holdMinor);
  }

  function afterStripeConfirm(created, result) {
    if (result.error) {
      showError(result.error.message || T.generic);
      return false;
    }
    const intent = result.paymentIntent;
    if (intent && AUTHORISED.includes(intent.status)) {
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
    const { stripe, elements } = state.stripe;
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

  function createElements(stripe) {
    const connector = selected();
    return stripe.elements({
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
  }

  /** A wallet payment: the wallet's sheet is told when it failed, so it can close. */
  async function onExpressConfirm(event) {
    const failed = () => event.paymentFailed({ reason: "fail" });
    showError("");
    if (capRefused()) {
      failed();
      return;
    }
    setBusy(true, T.paying);
    try {
      await confirmStripe(failed);
    } catch (err) {
      failed();
      showError(messageOf(err, T));
    } finally {
      if (!state.navigating) setBusy(false);
    }
  }

  /** Apple Pay and Google Pay live in the Express Checkout Element, above the card form. */
  function mountExpressCheckout(elements) {
    const express = elements.create("expressCheckout", { buttonHeight: 48 });
    const expressBox = $("express-checkout-element");
    expressBox.hidden = false;
    express.on("ready", (event) => {
      const methods = event && event.availablePaymentMethods;
      expressBox.hidden = !methods || !Object.values(methods).some(Boolean);
    });
    express.on("confirm", onExpressConfirm);
    express.mount(expressBox);
    return express;
  }

  function mountStripe() {
    const stripe = window.Stripe(cfg.payment.publishable_key, { locale: cfg.lang });
    const elements = createElements(stripe);
    const payment = elements.create("payment", {
      layout: "tabs",
      wallets: { applePay: "never", googlePay: "never" },
    });
    const express = mountExpressCheckout(elements);
    $("payment-element").hidden = false;
    payment.mount($("payment-element"));
    state.stripe = { stripe, elements, payment, express };
  }

  async function payStripe() {
    if (!state.stripe) {
      showError(T.stripe_missing);
      return;
    }
    setBusy(true, T.paying);
    await confirmStripe(null);
  }

  // --- Paying ---------------------------------------------------------------------------

  async function onSubmit(event) {
    event.preventDefault();
    if (el.payButton.disabled || state.navigating) return;
    showError("");
    await flushLimits();
    if (capRefused()) return;
    try {
      if (cfg.payment.kind === "stripe") await payStripe();
      else await payDemo();
    } catch (err) {
      showError(messageOf(err, T));
    } finally {
      if (!state.navigating) setBusy(false);
    }
  }

  function setupPayment() {
    if (cfg.payment.kind === "stripe") {
      if (typeof window.Stripe === "function") mountStripe();
      else showError(T.stripe_missing);
    }
    el.form.addEventListener("submit", onSubmit);
  }

  // --- The charger's status -------------------------------------------------------------
  // Kept live while the driver looks at the page: a charger that becomes free (or taken)
  // changes what the page offers, so the page is rendered again, unless the driver has
  // started paying.

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

  // Without the form the charger cannot be started: the page says why, nothing to pay.
  if (el.form) {
    setupConnectorAndCap();
    setupTestCards();
    setupPayment();
  }
  watchCharger();
  // Back to a charger page the browser kept in memory (bfcache): load it again, so the
  // server decides what it shows now; this phone's charge may be running there since.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) window.location.reload();
  });
})();
