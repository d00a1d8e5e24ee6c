// Qorgau messenger: live updates over Server-Sent Events, sending without a reload, read receipts.
// Without this script every page still works through plain forms.
(function () {
  "use strict";
  var timeline = document.getElementById("mx-timeline");
  var list = document.getElementById("mx-rooms");
  var compose = document.getElementById("mx-compose");
  var room = timeline ? timeline.dataset.room : null;
  var roomPath = room ? "/messenger/rooms/" + encodeURIComponent(room) : null;
  var csrf = (document.querySelector("input[name=_csrf]") || {}).value || "";
  var lastRead = null;
  var loading = null;

  // The chat fills the window below the top bar, whatever height the bar wraps to.
  var shell = document.querySelector(".mx");
  function fit() { if (shell) document.documentElement.style.setProperty("--mx-top", Math.round(shell.getBoundingClientRect().top + window.scrollY) + "px"); }
  fit();
  window.addEventListener("resize", fit);

  function post(url, data) {
    var body = new URLSearchParams(data);
    body.set("_csrf", csrf);
    return fetch(url, { method: "POST", body: body, credentials: "same-origin", headers: { "X-Requested-With": "fetch", "X-CSRF-Token": csrf } });
  }

  function atBottom() { return timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 80; }
  function toBottom() { timeline.scrollTop = timeline.scrollHeight; }

  function markRead() {
    if (!timeline || document.visibilityState !== "visible") return;
    var items = timeline.querySelectorAll("[data-event]");
    var last = items.length ? items[items.length - 1].dataset.event : null;
    if (!last || last === lastRead) return;
    lastRead = last;
    post(roomPath + "/read", { event_id: last }).then(refreshList);
  }

  function applyRedactions(scope) {
    scope.querySelectorAll("[data-redacts]").forEach(function (r) {
      var target = timeline.querySelector('[data-event="' + CSS.escape(r.dataset.redacts) + '"]');
      if (!target || target.classList.contains("is-deleted")) return;
      target.classList.add("is-deleted");
      var tools = target.querySelector(".mx-msg__tools");
      if (tools) tools.remove();
      var body = target.querySelector(".mx-msg__body");
      if (body) { body.textContent = timeline.dataset.deleted; body.classList.add("mx-msg__body--deleted"); }
    });
  }

  function applyEdits(scope) {
    scope.querySelectorAll("[data-edits]").forEach(function (edit) {
      var target = timeline.querySelector('.mx-msg[data-event="' + CSS.escape(edit.dataset.edits) + '"]');
      // Only the author's own edits count, as in every Matrix client.
      if (!target || target.dataset.sender !== edit.dataset.sender || target.classList.contains("is-deleted")) return;
      var body = target.querySelector(".mx-msg__body");
      if (body) body.textContent = edit.dataset.body;
      var head = target.querySelector(".mx-msg__head");
      if (head && !head.querySelector(".mx-edited")) {
        var mark = document.createElement("span");
        mark.className = "mx-edited";
        mark.textContent = timeline.dataset.edited;
        head.appendChild(document.createTextNode(" "));
        head.appendChild(mark);
      }
    });
  }

  function refreshTimeline() {
    if (!timeline) return Promise.resolve();
    if (loading) return loading.then(refreshTimeline);
    var stick = atBottom();
    loading = fetch(roomPath + "/timeline?after=" + timeline.dataset.last, { credentials: "same-origin" })
      .then(function (r) {
        var count = document.getElementById("mx-count");
        var members = r.headers.get("X-Room-Members");
        if (count && members) count.textContent = count.dataset.template.replace("{n}", members);
        return r.ok ? r.text() : "";
      })
      .then(function (html) {
        var box = document.createElement("ol");
        box.innerHTML = html;
        var items = Array.prototype.slice.call(box.children);
        items.forEach(function (li) {
          var stream = Number(li.dataset.stream || 0);
          if (stream <= Number(timeline.dataset.last)) return;
          var empty = timeline.querySelector(".mx-note:only-child");
          if (empty && !empty.dataset.event) empty.remove();
          timeline.appendChild(li);
          timeline.dataset.last = String(stream);
        });
        applyRedactions(timeline);
        applyEdits(timeline);
        if (items.length && stick) toBottom();
        if (items.length) markRead();
      })
      .finally(function () { loading = null; });
    return loading;
  }

  function refreshList() {
    if (!list) return;
    var current = list.dataset.current ? "?current=" + encodeURIComponent(list.dataset.current) : "";
    fetch("/messenger/list" + current, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) list.innerHTML = html; });
  }

  if (timeline) {
    applyEdits(timeline);
    toBottom();
    markRead();
    document.addEventListener("visibilitychange", markRead);
  }

  if (compose) {
    var text = compose.querySelector("textarea");
    var txn = compose.querySelector("input[name=txn]");
    var replyTo = compose.querySelector("input[name=reply_to]");
    var editOf = compose.querySelector("input[name=edit]");
    var context = compose.querySelector(".mx-context");
    var marked = null;
    function clearContext() {
      replyTo.value = ""; editOf.value = ""; context.hidden = true;
      if (marked) marked.classList.remove("is-target");
      marked = null;
    }
    function setContext(kind, msg) {
      clearContext();
      marked = msg;
      msg.classList.add("is-target");
      var label = context.querySelector(".mx-context__label");
      var body = msg.querySelector(".mx-msg__body").textContent;
      if (kind === "reply") {
        replyTo.value = msg.dataset.event;
        label.textContent = label.dataset.reply;
        body = msg.dataset.name + ": " + body;
      } else {
        editOf.value = msg.dataset.event;
        label.textContent = label.dataset.edit;
        text.value = body;
      }
      context.querySelector(".mx-context__text").textContent = body;
      context.hidden = false;
      text.focus();
    }
    timeline.addEventListener("click", function (e) {
      var button = e.target.closest("button[data-action]");
      if (!button) return;
      setContext(button.dataset.action, button.closest(".mx-msg"));
    });
    context.querySelector("[data-action=cancel]").addEventListener("click", function () {
      if (editOf.value) text.value = "";
      clearContext();
      text.focus();
    });
    text.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); compose.requestSubmit(); }
    });
    text.addEventListener("input", function () { text.style.height = "auto"; text.style.height = Math.min(text.scrollHeight, 160) + "px"; });
    compose.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = text.value.trim();
      if (!body) return;
      var button = compose.querySelector("button");
      button.disabled = true;
      post(compose.action, { body: body, txn: txn.value, reply_to: replyTo.value, edit: editOf.value })
        .then(function (r) {
          if (!r.ok) throw new Error(String(r.status));
          text.value = "";
          text.style.height = "auto";
          clearContext();
          txn.value = Math.random().toString(36).slice(2) + Date.now().toString(36);
          return refreshTimeline().then(toBottom);
        })
        .catch(function () { compose.classList.add("is-failed"); })
        .finally(function () { button.disabled = false; text.focus(); });
    });
  }

  // The member list may have changed since the page loaded: refresh it whenever it is opened.
  var members = document.querySelector(".mx-members");
  if (members) {
    members.addEventListener("toggle", function () {
      if (!members.open) return;
      fetch(location.pathname, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").querySelector(".mx-members__panel");
          if (fresh) members.querySelector(".mx-members__panel").replaceWith(fresh);
        });
    });
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) e.preventDefault();
  });

  if (window.EventSource && list) {
    var source = new EventSource("/messenger/events");
    source.addEventListener("rooms", function (e) {
      var rooms = JSON.parse(e.data).rooms || [];
      if (room && rooms.indexOf(room) >= 0) refreshTimeline();
      refreshList();
    });
  }
})();
