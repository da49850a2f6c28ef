/* Progressive enhancement only: every page works without this file.
   1. <time data-local-time> shows the reader's local time; the UTC text stays on hover.
   2. [data-print] buttons are revealed and open the print dialogue. */
(function () {
  "use strict";
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };
  document.querySelectorAll("time[data-local-time]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) { return; }
    var utc = el.textContent;
    var offset = -when.getTimezoneOffset();
    var sign = offset >= 0 ? "+" : "-";
    var abs = Math.abs(offset);
    el.textContent = when.getFullYear() + "-" + pad(when.getMonth() + 1) + "-" + pad(when.getDate()) +
      " " + pad(when.getHours()) + ":" + pad(when.getMinutes()) +
      " (UTC" + sign + pad(Math.floor(abs / 60)) + ":" + pad(abs % 60) + ")";
    el.setAttribute("title", utc);
  });
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
}());
