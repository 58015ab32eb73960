// The case console: the queue refreshes itself; a case is decided from the keyboard. No build step.
"use strict";

const POLL_MS = 5000;

function pollQueue(live) {
  const refresh = async () => {
    try {
      const response = await fetch(live.dataset.src, { credentials: "same-origin", cache: "no-store" });
      if (response.status === 401) {
        window.location.reload(); // the session ended: the page itself leads to the sign-in form
        return;
      }
      if (response.ok) live.innerHTML = await response.text();
    } catch (error) {
      console.warn("queue refresh failed", error); // offline for a moment; the next poll tries again
    }
  };
  window.setInterval(refresh, POLL_MS);
}

function submit(id) {
  const form = document.getElementById(id);
  if (form) form.requestSubmit();
}

function follow(id) {
  const link = document.getElementById(id);
  if (link) window.location.assign(link.href);
}

function chooseReason(n) {
  const reasons = document.getElementById("reasons");
  if (!reasons || !reasons.classList.contains("open")) return;
  const radio = reasons.querySelector(`input[data-key="${n}"]`);
  if (!radio) return;
  radio.checked = true;
  if (radio.value === "other") {
    document.getElementById("note").focus(); // Other needs words; Enter then sends it
  } else {
    submit("reject-form");
  }
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  if (event.target.closest("input[type=text], input:not([type]), input[type=password], textarea, select")) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  const page = document.body.dataset.page;
  switch (event.key) {
    case "c":
      if (page === "case") submit("confirm-form");
      break;
    case "r": {
      const reasons = document.getElementById("reasons");
      if (reasons) {
        reasons.classList.add("open");
        reasons.scrollIntoView({ block: "nearest" });
      }
      break;
    }
    case "1": case "2": case "3": case "4": case "5":
      chooseReason(event.key);
      break;
    case "j":
      if (page === "case") follow("next");
      else {
        const first = document.querySelector("#queue-live a.open");
        if (first) window.location.assign(first.href);
      }
      break;
    case "k":
      follow("prev");
      break;
    case "u":
      submit("undo-form");
      break;
    default:
      return;
  }
  event.preventDefault();
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("queue-live");
  if (live) pollQueue(live);
  document.addEventListener("keydown", onKey);
});
