/**
 * A log-bucketed latency histogram in microseconds, in the manner of HdrHistogram: values below
 * 128 µs are counted exactly (1 µs buckets); above, each power of two is split into 128 buckets,
 * so a percentile is off by less than 1/128 (0.8 %). Min, max, sum and count are exact.
 * Small enough to send between processes as JSON and to merge.
 */
const SUB_BUCKETS = 128;
const SUB_BITS = 7;
const MAX_EXPONENT = 40; // 2^47 µs: more than four years, so nothing is ever out of range

function indexOf(micros: number): number {
  const value = Math.max(0, Math.floor(micros));
  if (value < SUB_BUCKETS) return value;
  const bits = Math.floor(Math.log2(value)) + 1; // value < 2^bits
  const exponent = Math.min(bits - SUB_BITS - 1, MAX_EXPONENT);
  const mantissa = Math.min(Math.floor(value / 2 ** exponent), 2 * SUB_BUCKETS - 1);
  return SUB_BUCKETS + exponent * SUB_BUCKETS + (mantissa - SUB_BUCKETS);
}

/** The largest value counted in bucket `index`. */
function upperBound(index: number): number {
  if (index < SUB_BUCKETS) return index;
  const exponent = Math.floor((index - SUB_BUCKETS) / SUB_BUCKETS);
  const mantissa = SUB_BUCKETS + ((index - SUB_BUCKETS) % SUB_BUCKETS);
  return (mantissa + 1) * 2 ** exponent - 1;
}

/** The histogram as it travels between processes. */
export interface HistogramData {
  buckets: Array<[number, number]>;
  count: number;
  min: number;
  max: number;
  sum: number;
}

/** Percentiles in milliseconds, rounded for reports. */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export class Histogram {
  private readonly counts = new Map<number, number>();
  count = 0;
  min = Infinity;
  max = 0;
  sum = 0;

  /** Counts one value (µs). */
  record(micros: number): void {
    const index = indexOf(micros);
    this.counts.set(index, (this.counts.get(index) ?? 0) + 1);
    this.count++;
    this.sum += micros;
    if (micros < this.min) this.min = micros;
    if (micros > this.max) this.max = micros;
  }

  /** Counts a latency given in milliseconds. */
  recordMs(ms: number): void {
    this.record(ms * 1000);
  }

  /** The value (µs) at or below which `percent` % of the values fall; never above the maximum. */
  percentile(percent: number): number {
    if (this.count === 0) return 0;
    if (percent >= 100) return this.max;
    const rank = Math.max(1, Math.ceil((percent / 100) * this.count));
    let seen = 0;
    for (const index of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(index)!;
      if (seen >= rank) return Math.max(this.min, Math.min(upperBound(index), this.max));
    }
    return this.max;
  }

  /** Adds another histogram's counts to this one. */
  merge(other: Histogram | HistogramData): this {
    const data = other instanceof Histogram ? other.toJSON() : other;
    for (const [index, n] of data.buckets) this.counts.set(index, (this.counts.get(index) ?? 0) + n);
    this.count += data.count;
    this.sum += data.sum;
    if (data.count > 0) {
      this.min = Math.min(this.min, data.min);
      this.max = Math.max(this.max, data.max);
    }
    return this;
  }

  toJSON(): HistogramData {
    return { buckets: [...this.counts], count: this.count, min: this.count ? this.min : 0, max: this.max, sum: this.sum };
  }

  static fromJSON(data: HistogramData): Histogram {
    return new Histogram().merge(data);
  }

  /** Count, mean and percentiles in milliseconds (three decimals). */
  summary(): LatencySummary {
    const ms = (micros: number) => Math.round(micros) / 1000;
    return {
      count: this.count,
      mean: this.count ? ms(this.sum / this.count) : 0,
      p50: ms(this.percentile(50)),
      p90: ms(this.percentile(90)),
      p99: ms(this.percentile(99)),
      p999: ms(this.percentile(99.9)),
      max: ms(this.max),
    };
  }
}
