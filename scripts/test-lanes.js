/**
 * Test lanes. `npm test` (and CI) runs every suite. `npm run test:unit` is the
 * everyday lane: it leaves out the end-to-end suites below, which evaluate the
 * committed models on real data, train or gradient-check whole networks, open
 * reports in Chromium or run a live Prometheus. A test keeps every entry
 * pointing at a suite that exists.
 */
const SLOW_SUITES = [
  'test/pipeline/committed-models.test.ts', // the committed sets re-measured on 2,000 Fashion-MNIST images
  'test/report/committed-report.test.ts', // README ↔ committed results, both reports opened in Chromium
  'test/report/report.test.ts', // eval, gradients and transfer CLI runs, then Chromium
  'test/deploy/prometheus-live.test.ts', // two services and a real Prometheus evaluating every query
  'test/autodiff/models.test.ts', // finite-difference checks of whole architectures
  'test/architectures/resnet50.test.ts', // ImageNet-sized graphs
  'test/architectures/segnet224.test.ts',
  'test/pipeline/imagenet-shapes.test.ts',
  'test/pipeline/default-set.test.ts', // the default recipe end to end (smoke-sized)
  'test/pipeline/parallel.test.ts', // training stages in child processes
  'test/pipeline/commands.test.ts', // every `s2s train` command end to end
  'test/training/kill-resume.test.ts', // a training child killed and resumed
  'test/attacks/default-classifier.test.ts', // attacks on the committed classifier
];

module.exports = { SLOW_SUITES };
