/* ScanCharge, the receipt: a print button (hidden without JavaScript, where it cannot work).
 * Times are printed by the server in the location's time zone, with the zone's name.
 * Needs common.js first.
 */
(() => {
  "use strict";

  const SC = window.ScanCharge;
  if (!SC || SC.cfg.page !== "receipt") return;

  const print = SC.$("print-button");
  if (print) {
    print.hidden = false;
    print.addEventListener("click", () => window.print());
  }
})();
