/** The baseline's one activity: returns at once. */
export const baselineActivities = {
  noop(): Promise<void> {
    return Promise.resolve();
  },
};
export type BaselineActivities = typeof baselineActivities;
