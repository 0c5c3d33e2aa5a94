/* ScanCharge, the live charge: the server rendered the page complete; this keeps it up to
 * date by polling the charge's JSON (every 2 s, backing off while the network is gone), and
 * sends stop and cancel. Needs common.js first.
 */
(() => {
  "use strict";

  const SC = window.ScanCharge;
  if (!SC || SC.cfg.page !== "charge") return;
  const { $, cfg, api, messageOf, localPath, ask, formatKwh, formatClock } = SC;
  const T = cfg.texts;

  const POLL_MS = 2000;
  const MAX_BACKOFF_MS = 30000;
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

  const state = {
    current: cfg.charge,
    receivedAt: Date.now(), // when `current` arrived: the elapsed clock runs on from there
    timer: null,
    failures: 0, // polls failed in a row: the backoff grows with them
    inFlight: false,
  };
  const path = `/api/v1/charges/${encodeURIComponent(state.current.id)}`;

  const done = (c) => FINAL.has(c.status) && (c.status !== "CAPTURED" || Boolean(c.receipt_url));
  const running = (c) => c.status === "CHARGING" || c.status === "STOPPING";

  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }

  // --- Rendering ------------------------------------------------------------------------

  function renderElapsed() {
    let seconds = state.current.elapsed_seconds;
    if (seconds !== null && seconds !== undefined && running(state.current)) {
      seconds += (Date.now() - state.receivedAt) / 1000;
    }
    setText(el.elapsed, formatClock(seconds));
  }

  function renderFigures(c) {
    setText(el.statusText, c.status_text);
    el.dot.className = `dot dot-${c.status.toLowerCase()}`;
    setText(el.energy, formatKwh(c.energy_kwh));
    renderElapsed();
    setText(el.cost, c.cost_so_far ? c.cost_so_far.formatted : "–");
    setText(el.costLabel, FINAL.has(c.status) || c.status === "ENDED" ? T.cost_final : T.cost_so_far);
    setText(el.hold, c.hold ? c.hold.formatted : "–");
    el.capturedLine.hidden = !c.captured;
    if (c.captured) setText(el.captured, c.captured.formatted);
  }

  /** How close the cost is to where charging stops by itself; then why it ended. */
  function renderLimitAndEnd(c) {
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
  }

  /** The failure notice and what the driver can do now: stop, cancel, receipt, retry. */
  function renderActions(c) {
    const redirectFailed = Boolean(cfg.redirect_failed && c.status === "CREATED");
    if (c.failure) {
      setText(el.failure, c.failure.message);
      el.failure.hidden = false;
    } else if (!redirectFailed) {
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
    el.retry.hidden = !(RETRY.has(c.status) || redirectFailed);
  }

  function render(c) {
    renderFigures(c);
    renderLimitAndEnd(c);
    renderActions(c);
  }

  function update(c) {
    state.current = c;
    state.receivedAt = Date.now();
    render(c);
  }

  // --- Polling --------------------------------------------------------------------------

  function schedule(ms) {
    if (state.timer !== null) clearTimeout(state.timer);
    state.timer = done(state.current) ? null : setTimeout(poll, ms);
  }

  async function poll() {
    state.timer = null;
    if (state.inFlight) return;
    state.inFlight = true;
    try {
      update(await api("GET", path));
      state.failures = 0;
      el.connection.hidden = true;
    } catch (err) {
      state.failures += 1;
      setText(el.connection, T.connection_lost);
      el.connection.hidden = false;
    } finally {
      state.inFlight = false;
    }
    const failures = state.failures;
    schedule(failures ? Math.min(POLL_MS * 2 ** failures, MAX_BACKOFF_MS) : POLL_MS);
  }

  /** Back on the page (phone unlocked, network back): look now rather than at the next tick. */
  function pollWhenBack() {
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && !done(state.current)) poll();
    });
    window.addEventListener("online", () => {
      if (!done(state.current)) poll();
    });
  }

  // --- Stop and cancel ------------------------------------------------------------------

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

  function setupActions() {
    el.stop.addEventListener("click", async () => {
      const dialog = $("stop-dialog");
      const answer = await ask(dialog);
      // Without <dialog> support, the browser's own confirm asks the same question.
      if (answer === null ? window.confirm(dialog.querySelector("h2").textContent) : answer === "stop") {
        await act(el.stop, "stop", T.stopping);
      }
    });
    el.cancel.addEventListener("click", () => act(el.cancel, "cancel", T.cancelling));
  }

  setupActions();
  pollWhenBack();
  setInterval(() => {
    if (running(state.current)) renderElapsed();
  }, 1000);
  render(state.current);
  schedule(POLL_MS);
})();
