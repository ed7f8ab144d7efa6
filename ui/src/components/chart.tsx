// A time-series chart (uPlot). Loaded lazily: pages without charts never download it.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { useEffect, useRef } from "preact/hooks";

export interface Series {
  label: string;
  bars?: boolean;
}

/** `data[0]` are UNIX seconds, `data[1..]` one array per series. */
export function Chart({
  data,
  series,
  height = 280,
  title,
  onRendered,
}: {
  data: (number | null)[][];
  series: Series[];
  height?: number;
  title: string;
  onRendered?: (ms: number) => void;
}) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const drawn = useRef<unknown>(null);

  useEffect(() => {
    const el = host.current!;
    const width = Math.max(300, el.clientWidth || 600);
    const started = performance.now();
    const opts: uPlot.Options = {
      width,
      height,
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: "#1f6feb",
          width: 1.5,
          fill: s.bars ? "rgba(31,111,235,0.35)" : undefined,
          paths: s.bars ? uPlot.paths.bars!({ size: [0.8, 40] }) : undefined,
          points: { show: false },
          spanGaps: false,
        })),
      ],
      axes: [{}, { size: 60 }],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
    };
    plot.current = new uPlot(opts, data as uPlot.AlignedData, el);
    drawn.current = data;
    onRendered?.(performance.now() - started);
    const resize = () => plot.current?.setSize({ width: Math.max(300, el.clientWidth), height });
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      plot.current?.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [series.map((s) => s.label).join("|"), height]);

  useEffect(() => {
    if (plot.current && drawn.current !== data) {
      drawn.current = data;
      const started = performance.now();
      plot.current.setData(data as uPlot.AlignedData);
      onRendered?.(performance.now() - started);
    }
  }, [data]);

  return <div ref={host} class="chart" role="img" aria-label={title} data-points={data[0]?.length ?? 0} />;
}

export default Chart;
