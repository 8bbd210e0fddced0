import { useEffect, useState } from 'preact/hooks';

/** The route is the URL's hash (`#/tasks/<id>`): the server serves one page, and a reload lands where it was. */
export function useRoute(): string[] {
  const read = () => (location.hash.replace(/^#\/?/, '') || 'tasks').split('?')[0].split('/').map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onChange = () => setRoute(read());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export function navigate(path: string): void {
  location.hash = `#/${path}`;
}

export function href(path: string): string {
  return `#/${path}`;
}
