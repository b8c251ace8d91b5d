import type { Notification } from "../../notify/outbox.js";
import { type Html, html, time, when } from "./html.js";

/** The job page's notifications (src/notify): each notifier's state, attempts and last error; never the payload. */
export function notificationsSection(list: readonly Notification[]): Html {
  return html`${when(
    list.length,
    () => html`<h2>Notifications</h2><table data-notifications><thead><tr><th>notifier</th><th>state</th><th>attempts</th><th>next try / sent</th><th>last error</th></tr></thead><tbody>
${list.map((n) => html`<tr data-notifier="${n.notifier}" data-state="${n.state}"><td>${n.notifier}</td><td>${n.state}</td><td>${n.attempts}</td><td>${n.state === "sent" && n.sentAt ? `sent ${time(n.sentAt)}` : n.state === "pending" ? time(n.notBefore) : ""}</td><td>${n.lastError ? `${n.lastError.code}: ${n.lastError.message}` : ""}</td></tr>`)}
</tbody></table>`,
  )}`;
}
