import { useEffect } from "react";
import type { Options } from "./hooks/usePerformanceMetrics";
import { usePath } from "./lib/router";
import { SystemPerformancePage } from "./pages/SystemPerformancePage";

export function App({ options }: { options?: Options }) {
  const [path, navigate] = usePath();
  const normalized = path.replace(/\/+$/, "") || "/";
  useEffect(() => {
    if (normalized === "/") navigate("/system", true);
  }, [normalized, navigate]);

  if (normalized === "/" || normalized === "/system") return <SystemPerformancePage options={options} />;
  return (
    <main className="mx-auto max-w-xl px-6 py-24 text-center">
      <h1 className="text-xl font-semibold text-tremor-content-strong dark:text-dark-tremor-content-strong">Page not found</h1>
      <p className="mt-2 text-sm">There is nothing at {path}.</p>
      <a
        href="/system"
        onClick={(e) => {
          e.preventDefault();
          navigate("/system");
        }}
        className="mt-6 inline-block text-sm font-medium text-tremor-brand hover:underline"
      >
        Go to System performance
      </a>
    </main>
  );
}
