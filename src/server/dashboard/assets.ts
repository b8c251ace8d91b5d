/**
 * The dashboard's one stylesheet and one script, served from memory. Written by hand and kept small: the pages are
 * rendered on the server, so the script only refreshes live tables, and nothing needs a bundler or the internet.
 */
export const CSS = `
:root { --red: #b3261e; --green: #1b6e3a; --amber: #8a5a00; --grey: #5f6368; --line: #dadce0; font-family: system-ui, sans-serif; }
body { margin: 0; color: #202124; background: #f8f9fa; }
header { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.2rem; background: #202124; color: #fff; }
header nav a { color: #e8eaed; margin-right: 1rem; text-decoration: none; }
header nav a[aria-current] { color: #fff; border-bottom: 2px solid #8ab4f8; }
header .logout { margin-left: auto; }
main { padding: 1rem 1.2rem 3rem; max-width: 1400px; }
h1 { font-size: 1.4rem; margin: .4rem 0 1rem; }
h2 { font-size: 1.05rem; margin: 1.4rem 0 .5rem; }
table { border-collapse: collapse; background: #fff; width: 100%; font-size: .88rem; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f1f3f4; font-weight: 600; }
td.uid, .uid { font-family: ui-monospace, monospace; font-size: .8rem; word-break: break-all; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .6rem .9rem; }
.card h2 { margin-top: .2rem; }
.status { padding: .8rem 1rem; border-radius: 6px; font-weight: 600; margin-bottom: 1rem; color: #fff; }
.status.ok { background: var(--green); }
.status.alarm { background: var(--red); }
.status ul { margin: .3rem 0 0; font-weight: 400; }
.state { display: inline-block; padding: 0 .45rem; border-radius: 9px; font-size: .8rem; color: #fff; background: var(--grey); }
.state-done { background: var(--green); } .state-failed, .state-dead { background: var(--red); }
.state-running { background: #1a73e8; } .state-queued { background: var(--amber); }
.error { border-left: 4px solid var(--red); background: #fce8e6; padding: .5rem .8rem; }
.warning { border-left: 4px solid var(--amber); background: #fef7e0; padding: .5rem .8rem; }
form.inline { display: inline; }
form.filters { display: flex; flex-wrap: wrap; gap: .6rem; align-items: end; margin-bottom: .8rem; }
form.filters label { display: flex; flex-direction: column; font-size: .8rem; }
button { cursor: pointer; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; background: #fff; padding: .6rem .9rem; border: 1px solid var(--line); }
dt { color: var(--grey); } dd { margin: 0; }
.preview { height: 320px; max-width: 100%; object-fit: contain; object-position: left; image-rendering: pixelated; border: 1px solid var(--line); background: #000; }
progress { width: 140px; height: .7rem; }
.card progress { width: 70px; }
.card td { white-space: nowrap; }
.card td.wrap { white-space: normal; word-break: break-word; }
.card th { white-space: nowrap; }
.muted { color: var(--grey); font-size: .85rem; }
form.drop { border: 2px dashed var(--line); background: #fff; padding: .4rem 1rem; }
form.drop.over { border-color: #1a73e8; background: #e8f0fe; }
.login { max-width: 360px; margin: 4rem auto; background: #fff; padding: 1.5rem; border: 1px solid var(--line); border-radius: 6px; }
.login input { width: 100%; box-sizing: border-box; padding: .4rem; margin: .4rem 0 1rem; }
`;

export const JS = `"use strict";
// Live tables: a tbody with data-live is refetched (a server-rendered fragment, same session) every 2 s.
for (const body of document.querySelectorAll("tbody[data-live]")) {
  const stamp = document.querySelector("[data-live-stamp]");
  const refresh = async () => {
    try {
      const res = await fetch(body.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (res.status === 401) { location.href = "/login"; return; }
      if (res.ok) {
        body.innerHTML = await res.text();
        if (stamp) stamp.textContent = "updated " + new Date().toISOString().slice(11, 19) + "Z";
      }
    } catch (e) { /* the node restarting: try again next time */ }
  };
  setInterval(refresh, 2000);
}
// The rule tester for files: dropped or chosen files go to /rules/files with the session's CSRF token.
for (const form of document.querySelectorAll("form[data-files]")) {
  const out = document.querySelector("[data-files-result]");
  const send = async (files) => {
    const data = new FormData();
    for (const f of files) data.append("files", f, f.name);
    out.textContent = "reading " + files.length + " files…";
    const res = await fetch(form.action, { method: "POST", body: data, headers: { "X-CSRF-Token": form.dataset.csrf } });
    if (res.ok) out.innerHTML = await res.text();
    else out.textContent = "refused (" + res.status + "): " + (await res.text());
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); send([...form.querySelector("input[type=file]").files]); });
  form.addEventListener("dragover", (e) => { e.preventDefault(); form.classList.add("over"); });
  form.addEventListener("dragleave", () => form.classList.remove("over"));
  form.addEventListener("drop", (e) => { e.preventDefault(); form.classList.remove("over"); send([...e.dataTransfer.files]); });
}
`;
