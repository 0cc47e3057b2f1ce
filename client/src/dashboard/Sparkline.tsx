/** A tiny inline SVG line of recent prices. */

export function Sparkline({ points, width = 96, height = 24 }: { points: readonly number[]; width?: number; height?: number }) {
  if (points.length < 2) return <svg className="spark" width={width} height={height} aria-hidden="true" />;
  const min = Math.min(...points);
  const max = Math.max(...points);
  const span = max - min || 1;
  const step = width / (points.length - 1);
  const d = points.map((p, i) => `${i === 0 ? "M" : "L"}${(i * step).toFixed(1)},${(height - 2 - ((p - min) / span) * (height - 4)).toFixed(1)}`).join("");
  const up = (points[points.length - 1] as number) >= (points[0] as number);
  return (
    <svg className={`spark ${up ? "up" : "down"}`} width={width} height={height} viewBox={`0 0 ${width} ${height}`} aria-hidden="true">
      <path d={d} fill="none" strokeWidth="1.5" />
    </svg>
  );
}
