// The console's one script (progressive: without it, times read in UTC). Each <time> is shown in
// the viewer's time zone, with the UTC time on hover.
for (const t of document.querySelectorAll("time[datetime]")) {
  const at = new Date(t.getAttribute("datetime"));
  if (isNaN(at)) continue;
  t.title = t.textContent;
  t.textContent = at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}
