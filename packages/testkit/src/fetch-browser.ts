/** One response as a {@link FetchBrowser} saw it. */
export interface BrowsedPage {
  status: number;
  url: string;
  headers: Headers;
  body: string;
}

const MAX_HOPS = 12;

/**
 * A browser reduced to what server-side tests of sign-in flows need: a cookie jar per origin, manual
 * redirects (each hop followed with the jar, as a browser would), and filling in the test IdP's login
 * form. No JavaScript. Not a security boundary: it keeps every cookie it is given, by name.
 *
 * @example
 * const browser = new FetchBrowser();
 * const page = await browser.open(`${consoleUrl}/login`, { login: 'alice', password });
 */
export class FetchBrowser {
  private readonly jars = new Map<string, Map<string, string>>();

  /**
   * GETs `url`, following redirects; at a login form, submits `login` once when given. A redirect to
   * a URL starting with `stopAt` is not followed: the answer is that redirect (status 303, its `url`).
   */
  async open(
    url: string,
    login?: { login: string; password: string },
    stopAt?: string,
  ): Promise<BrowsedPage> {
    let next = url;
    let form: URLSearchParams | undefined;
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      if (stopAt && hop > 0 && next.startsWith(stopAt)) {
        return { status: 303, url: next, headers: new Headers(), body: '' };
      }
      const page = await this.request(next, form ? { form } : {});
      form = undefined;
      const location = page.headers.get('location');
      if (location && page.status >= 300 && page.status < 400) {
        next = new URL(location, next).href;
        continue;
      }
      const refresh = /<meta http-equiv="refresh" content="0;url=([^"]+)"/.exec(page.body)?.[1];
      if (refresh) {
        next = new URL(refresh, next).href;
        continue;
      }
      const action = /<form method="post" action="([^"]+\/login)"/.exec(page.body)?.[1];
      if (action && login) {
        next = new URL(action, next).href;
        form = new URLSearchParams(login);
        login = undefined;
        continue;
      }
      return page;
    }
    throw new Error(`more than ${MAX_HOPS} redirects from ${url}`);
  }

  /** One request with this browser's cookies for the origin; a form is POSTed as a browser would. */
  async request(
    url: string,
    options: { form?: URLSearchParams; headers?: Record<string, string> } = {},
  ): Promise<BrowsedPage> {
    const origin = new URL(url).origin;
    const jar = this.jars.get(origin) ?? new Map<string, string>();
    this.jars.set(origin, jar);
    const response = await fetch(url, {
      method: options.form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: {
        cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; '),
        ...(options.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...options.headers,
      },
      body: options.form,
    });
    for (const setCookie of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = setCookie.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    return { status: response.status, url, headers: response.headers, body: await response.text() };
  }

  /** The value of a cookie this browser holds for `origin`. */
  cookie(origin: string, name: string): string | undefined {
    return this.jars.get(new URL(origin).origin)?.get(name);
  }

  /** Sets (or replaces) a cookie, as a tampering client would. */
  setCookie(origin: string, name: string, value: string): void {
    const key = new URL(origin).origin;
    const jar = this.jars.get(key) ?? new Map<string, string>();
    jar.set(name, value);
    this.jars.set(key, jar);
  }
}
