// Countdown of a timed question (participant/challenge.html). Progressive enhancement: the
// page already says the time allowed and the time left when it was sent; this only keeps the
// clock moving and announces half time and the end to screen readers, once each. At zero the
// "More time" button goes (the server refuses it once the time is up: WCAG 2.2.1 extends a
// limit before it runs out).
(function () {
  "use strict";
  var box = document.querySelector(".timer[data-seconds-left]");
  if (!box) return;
  var left = parseInt(box.getAttribute("data-seconds-left"), 10);
  var clock = box.querySelector(".timer-clock");
  var alert = box.querySelector(".timer-alert");
  var half = Math.floor(left / 2);
  var end = Date.now() + left * 1000;
  function show(seconds) {
    var m = Math.floor(seconds / 60), s = seconds % 60;
    clock.textContent = m + ":" + (s < 10 ? "0" : "") + s;
  }
  function tick() {
    var seconds = Math.max(0, Math.round((end - Date.now()) / 1000));
    show(seconds);
    if (seconds === half && half > 0) alert.textContent = alert.getAttribute("data-half");
    if (seconds === 0) {
      alert.textContent = alert.getAttribute("data-over");
      box.classList.add("over");
      var extend = document.querySelector(".timer-extend");
      if (extend) {
        var button = extend.querySelector("button");
        if (button) button.disabled = true;
        extend.hidden = true;
      }
      return;
    }
    window.setTimeout(tick, 1000);
  }
  tick();
})();
