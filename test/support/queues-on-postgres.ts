// The `postgres` Jest project: every platform a spec starts keeps its queues and shared state on Postgres alone.
// Each test file's environment has its own copy of process.env, so this never reaches the `default` project.
process.env.TEST_QUEUE_BACKEND = 'postgres';
