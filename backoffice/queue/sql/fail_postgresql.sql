-- Give a held task back in ONE autocommit statement (psycopg placeholders), as TaskStore.fail:
-- pending after a backoff (base·2^(attempt-1), capped; the base is the type's
-- retry_backoff_seconds when defined, read here by primary key), or failed (dead letter) when retry is false or the
-- attempts are used up. Fenced by the token (a held task: locked or expired) and the
-- consumer's task types. Stores last_error_kind; the `failed` event carries error, error_kind,
-- dead, attempt, retry_at (when not dead) and the timing; a dead letter records the task's
-- result callback. No row back means "not done": the caller asks why (the sync store).
WITH given_back AS (
    UPDATE tasks AS t
    SET status = CASE WHEN NOT %(retry)s OR t.attempts >= t.max_attempts THEN 'failed' ELSE 'pending' END,
        available_at = CASE WHEN NOT %(retry)s OR t.attempts >= t.max_attempts THEN t.available_at
            ELSE CAST(%(now)s AS timestamptz) + make_interval(secs => LEAST(
                COALESCE((SELECT d.retry_backoff_seconds FROM task_types AS d
                          WHERE d.task_type = t.task_type), CAST(%(backoff_base)s AS double precision))
                * 2 ^ GREATEST(t.attempts - 1, 0),
                CAST(%(backoff_max)s AS double precision)))
            END,
        last_error = CAST(%(error)s AS text),
        last_error_kind = CAST(%(error_kind)s AS text),
        lock_token = NULL,
        locked_until = NULL,
        version = t.version + 1,
        updated_at = %(now)s,
        updated_by = %(actor)s
    WHERE t.id = %(id)s
      AND t.lock_token = %(token)s
      AND t.status IN ('locked', 'expired')
      AND (CAST(%(task_types)s AS text[]) IS NULL OR t.task_type = ANY(CAST(%(task_types)s AS text[])))
    RETURNING {columns}
),
dead AS (
    SELECT * FROM given_back WHERE status = 'failed'
),
logged AS (
    INSERT INTO task_events (task_id, event, actor, at, details)
    SELECT id, 'failed', %(actor)s, %(now)s,
           jsonb_build_object('error', CAST(%(error)s AS text), 'error_kind', CAST(%(error_kind)s AS text),
                              'dead', status = 'failed', 'attempt', attempts)
           || CASE WHEN status = 'failed' THEN jsonb_build_object()
                   -- as Python's datetime.isoformat(timespec="microseconds") in UTC
                   ELSE jsonb_build_object('retry_at', to_char(available_at AT TIME ZONE 'UTC',
                                                               'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))
              END
           || {timing:given_back:now}
    FROM given_back
),
callbacks AS (
    {callback:dead:task.failed}
)
SELECT * FROM given_back
