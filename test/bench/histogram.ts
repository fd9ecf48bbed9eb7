/**
 * A log-bucketed latency histogram in microseconds, in the manner of HdrHistogram: values below
 * 128 µs are counted exactly (1 µs buckets); above, each power of two is split into 128 buckets,
 * so a percentile is off by less than 1/128 (0.8 %). Min, max, sum and count are exact.
 * Small enough to send between processes as JSON and to merge.
 */
const SUB_BUCKETS = 128;
const SUB_BITS = 7;
const MAX_EXPONENT = 40; // 2^47 µs: more than four years, so nothing is ever out of range
const BUCKETS = SUB_BUCKETS + MAX_EXPONENT * SUB_BUCKETS + SUB_BUCKETS;
const UINT32 = 2 ** 32;

/**
 * The bucket of a value. The fan-out's subscriber process records a million values a second, so
 * below 2^32 µs (71 minutes) the power of two comes from Math.clz32 and the mantissa from a shift;
 * Math.log2 and a division per value were a fifth of that process's CPU.
 */
function indexOf(micros: number): number {
  const value = micros > 0 ? Math.floor(micros) : 0;
  if (value < SUB_BUCKETS) return value;
  if (value < UINT32) {
    const exponent = 32 - Math.clz32(value) - SUB_BITS - 1; // value < 2^(exponent + 8)
    return SUB_BUCKETS + exponent * SUB_BUCKETS + ((value >>> exponent) - SUB_BUCKETS);
  }
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
  /** Count per bucket: a typed array, not a Map, for the same reason as indexOf. */
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  min = Infinity;
  max = 0;
  sum = 0;

  /** Counts one value (µs). */
  record(micros: number): void {
    const index = indexOf(micros);
    this.counts[index] = this.counts[index]! + 1;
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
    for (let index = 0; index < BUCKETS; index++) {
      seen += this.counts[index]!;
      if (seen >= rank) return Math.max(this.min, Math.min(upperBound(index), this.max));
    }
    return this.max;
  }

  /** Adds another histogram's counts to this one. */
  merge(other: Histogram | HistogramData): this {
    const data = other instanceof Histogram ? other.toJSON() : other;
    for (const [index, n] of data.buckets) {
      if (!(index >= 0 && index < BUCKETS)) throw new Error(`histogram bucket ${index} out of range`);
      this.counts[index] = this.counts[index]! + n;
    }
    this.count += data.count;
    this.sum += data.sum;
    if (data.count > 0) {
      this.min = Math.min(this.min, data.min);
      this.max = Math.max(this.max, data.max);
    }
    return this;
  }

  toJSON(): HistogramData {
    const buckets: Array<[number, number]> = [];
    for (let index = 0; index < BUCKETS; index++) if (this.counts[index]) buckets.push([index, this.counts[index]!]);
    return { buckets, count: this.count, min: this.count ? this.min : 0, max: this.max, sum: this.sum };
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
