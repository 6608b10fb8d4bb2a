import { useCallback, useEffect, useState } from "react";

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
