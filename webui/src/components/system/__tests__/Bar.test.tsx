import { render } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { Bar } from "../common";

describe("Bar", () => {
  it.each([
    { value: 42, width: "42%" },
    { value: 130, width: "100%" },
    { value: -5, width: "0%" },
  ])("fills $value as $width in its colour", ({ value, width }) => {
    const { container } = render(<Bar value={value} color="amber" />);
    const fill = container.querySelector("[data-bar] > div > div") as HTMLElement;
    expect(fill.style.width).toBe(width);
    expect(fill.className).toContain("bg-amber-500");
  });
});
