"""The task queue (procrastinate on the application's PostgreSQL): mapping jobs and the periodic schedule."""
