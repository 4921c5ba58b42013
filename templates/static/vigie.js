// Vigie console: the little behaviour pages need, with no inline script (the CSP forbids it).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // The navigation folds into a button on narrow screens.
  document.querySelectorAll("[data-toggle]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-toggle"));
    if (!target) return;
    button.addEventListener("click", function () {
      var open = target.classList.toggle("open");
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  });
  // Buttons that change something irreversible ask first.
  document.querySelectorAll("[data-confirm]").forEach(function (el) {
    el.addEventListener("click", function (event) {
      if (!window.confirm(el.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
  // User form: the menus offered follow the chosen role, ticked by the role's defaults.
  var role = document.querySelector("[data-role-select]");
  if (role) {
    var initial = role.value;
    role.addEventListener("change", function () {
      document.querySelectorAll(".menu-choices li[data-offered]").forEach(function (li) {
        var offered = li.getAttribute("data-offered").split(" ").indexOf(role.value) >= 0;
        var box = li.querySelector("input");
        li.hidden = !offered;
        if (box) {
          box.disabled = !offered;
          if (role.value !== initial) {
            box.checked = offered && li.getAttribute("data-defaults").split(" ").indexOf(role.value) >= 0;
          }
        }
      });
    });
  }
});
