import { learningRate, parseSchedule } from '../../src/training/schedule';

describe('learning-rate schedules', () => {
  it('constant, with linear warmup', () => {
    const s = parseSchedule('constant', 0.1, 100, 4);
    [0.025, 0.05, 0.075, 0.1, 0.1, 0.1].forEach((lr, i) => expect(learningRate(s, [0, 1, 2, 3, 4, 50][i])).toBeCloseTo(lr, 15));
  });

  it('step decay counts from the end of the warmup', () => {
    const s = parseSchedule('step:10:0.5', 1, 100, 2);
    expect(learningRate(s, 2)).toBe(1);
    expect(learningRate(s, 11)).toBe(1);
    expect(learningRate(s, 12)).toBe(0.5);
    expect(learningRate(s, 32)).toBe(0.125);
  });

  it('cosine goes from lr to minLr over the steps after warmup, then stays', () => {
    const s = parseSchedule('cosine:0.01', 1, 110, 10);
    expect(learningRate(s, 9)).toBe(1);
    expect(learningRate(s, 10)).toBe(1);
    expect(learningRate(s, 60)).toBeCloseTo(0.505, 12);
    expect(learningRate(s, 109)).toBeGreaterThan(0.01);
    expect(learningRate(s, 110)).toBe(0.01);
    expect(learningRate(s, 500)).toBe(0.01);
  });

  it('rejects malformed specifications', () => {
    expect(() => parseSchedule('linear', 0.1, 10)).toThrow(/unknown learning-rate schedule 'linear'/);
    expect(() => parseSchedule('step:0', 0.1, 10)).toThrow(/positive integer SIZE/);
    expect(() => parseSchedule('constant', 0, 10)).toThrow(/must be positive/);
  });
});
