import { createMetricsExposition } from '../../adapter';
import type { RouteModule } from './route-module';

/** `GET /metrics`: the Prometheus exposition of this process and its database (scope `metrics:read`). */
export const metricsHandlers: RouteModule = ({ db }) => {
  const exposition = createMetricsExposition(db);
  return {
    getMetrics: async () => ({ status: 200, text: await exposition.render(), contentType: exposition.contentType }),
  };
};
