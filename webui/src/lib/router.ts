import { useCallback, useEffect, useMemo, useState } from "react";

/** The smallest router that does the job: the path, and a way to change it. */
export function usePath(): [string, (to: string, replace?: boolean) => void] {
  const [path, setPath] = useState(() => window.location.pathname);
  useEffect(() => {
    const on = () => setPath(window.location.pathname);
    window.addEventListener("popstate", on);
    return () => window.removeEventListener("popstate", on);
  }, []);
  const navigate = useCallback((to: string, replace = false) => {
    const url = to + window.location.search + window.location.hash;
    if (replace) window.history.replaceState(null, "", url);
    else window.history.pushState(null, "", url);
    setPath(to);
  }, []);
  return [path, navigate];
}

const QUERY_EVENT = "sysperf:query";

/**
 * The query string as state: a reload or a shared link lands on the same
 * view. setQuery merges (null deletes) and pushes a history entry, so the
 * back button undoes it, unless replace is set.
 */
export function useQuery(): [URLSearchParams, (change: Record<string, string | null>, replace?: boolean) => void] {
  const [search, setSearch] = useState(() => window.location.search);
  useEffect(() => {
    const on = () => setSearch(window.location.search);
    window.addEventListener("popstate", on);
    window.addEventListener(QUERY_EVENT, on);
    return () => {
      window.removeEventListener("popstate", on);
      window.removeEventListener(QUERY_EVENT, on);
    };
  }, []);
  const setQuery = useCallback((change: Record<string, string | null>, replace = false) => {
    const q = new URLSearchParams(window.location.search);
    for (const [k, v] of Object.entries(change)) {
      if (v === null) q.delete(k);
      else q.set(k, v);
    }
    const s = q.toString();
    const url = window.location.pathname + (s ? `?${s}` : "") + window.location.hash;
    if (url === window.location.pathname + window.location.search + window.location.hash) return;
    if (replace) window.history.replaceState(null, "", url);
    else window.history.pushState(null, "", url);
    // Every user of the query hears of it, not only the caller.
    window.dispatchEvent(new Event(QUERY_EVENT));
  }, []);
  const params = useMemo(() => new URLSearchParams(search), [search]);
  return [params, setQuery];
}
