// The live audit feed: one EventSource on /events/stream with the page's filters; newest rows first.
// Served from the console itself (the Content-Security-Policy allows no inline script).
const feed = document.getElementById('feed');
const status = document.querySelector('[data-testid="live-status"]');
const MAX_ROWS = 500;

function cell(text, href) {
  const td = document.createElement('td');
  if (href) {
    const a = document.createElement('a');
    a.href = href;
    a.textContent = text;
    td.append(a);
  } else {
    td.textContent = text;
  }
  return td;
}

if (feed && status) {
  const source = new EventSource(`/events/stream${window.location.search}`);
  source.addEventListener('ready', () => {
    status.textContent = 'Live';
    status.classList.add('on');
  });
  source.addEventListener('audit', (message) => {
    const event = JSON.parse(message.data);
    const tr = document.createElement('tr');
    tr.dataset.type = event.type;
    tr.dataset.subject = event.subject;
    const tree = event.type === 'delegation.issued' ? `/tree?jti=${encodeURIComponent(event.subject)}` : '';
    tr.append(
      cell(event.time),
      cell(event.type),
      cell(event.subject, tree),
      cell(event.app),
      cell(event.env),
    );
    feed.prepend(tr);
    while (feed.rows.length > MAX_ROWS) feed.deleteRow(-1);
  });
  source.addEventListener('problem', (message) => {
    status.textContent = `Audit unavailable: ${JSON.parse(message.data).message}`;
  });
  source.addEventListener('expired', () => {
    status.textContent = 'Your session has ended: sign in again.';
    status.classList.remove('on');
    source.close();
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) status.textContent = 'Disconnected.';
    else status.textContent = 'Reconnecting…';
    status.classList.remove('on');
  };
}
