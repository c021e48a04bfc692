// A report's page: the reply template chosen above the note of a status change fills the
// note's box with its text (already filled for the report by the server), where the agent
// reads and edits it before choosing the new status. The choice itself is then no longer
// posted (its text is in the note); without this script the server does the same with the
// posted code (admin/workflow.py). What the agent typed stays after the template's text.
"use strict";
(function () {
  function start() {
    var select = document.getElementById("transition-template");
    var note = document.getElementById("transition-note");
    var data = document.getElementById("reply-template-texts");
    if (!select || !note || !data) return;
    var texts = JSON.parse(data.textContent);
    var inserted = "";
    select.removeAttribute("name");
    select.addEventListener("change", function () {
      var typed = note.value;
      if (inserted && typed.indexOf(inserted) === 0) {
        typed = typed.slice(inserted.length).replace(/^\n/, "");
      }
      inserted = texts[select.value] || "";
      note.value = inserted && typed ? inserted + "\n" + typed : inserted || typed;
      note.focus();
    });
    select.dataset.ready = "1";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
