/** The one page of the dashboard that needs no session: paste an admin JWT, get a session cookie. */
export function loginPage(error?: string): string {
  const message = error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Queue dashboard: sign in</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem; color: #222; }
  textarea { width: 100%; height: 8rem; font: 12px monospace; }
  button { margin-top: .75rem; padding: .4rem 1.2rem; }
  .error { color: #b00020; }
</style>
</head>
<body>
<h1>Queue dashboard</h1>
<p>Paste an admin token (a JWT with the <code>admin</code> role, e.g. from <code>npm run token -- --sub you --admin</code>).
The token is checked once and is not stored; you get a session of one hour at most.</p>
${message}
<form method="post" action="/admin/login">
  <label for="token">Admin token</label>
  <textarea id="token" name="token" required autocomplete="off" spellcheck="false"></textarea>
  <button type="submit">Sign in</button>
</form>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
