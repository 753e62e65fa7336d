-- Complete a batch in ONE statement (psycopg placeholders), the consumer's task types checked
-- (NULL: any type). Each item counts only when its token is the task's current one (fencing):
-- a stale worker never completes a task somebody re-locked. A `failed` row keeps a token only
-- when the sweep dead-lettered it (its lock ran out on the last attempt; fail and retry clear
-- the token), so that holder may still complete it. Each completion logs its `completed` event
-- with its timing and records its result callback. Ids not returned were not completed; the
-- caller asks why. Also the sync store's completion on PostgreSQL (claim.PostgresQueue).
WITH items AS (
    SELECT * FROM unnest(CAST(%(ids)s AS uuid[]), CAST(%(tokens)s AS uuid[]), CAST(%(results)s AS jsonb[]))
        AS i(id, token, result)
),
done AS (
    UPDATE tasks AS t
    SET status = 'completed',
        completed_date = %(now)s,
        completed_by = %(actor)s,
        result = items.result,
        lock_token = NULL,
        locked_until = NULL,
        version = t.version + 1,
        updated_at = %(now)s,
        updated_by = %(actor)s
    FROM items
    WHERE t.id = items.id
      AND t.lock_token = items.token
      AND t.status IN ('locked', 'expired', 'failed')
      AND (CAST(%(task_types)s AS text[]) IS NULL OR t.task_type = ANY(CAST(%(task_types)s AS text[])))
    RETURNING t.id, t.task_type, t.created_at, t.not_before, t.first_locked_at, t.lock_date, t.callback_url
),
logged AS (
    INSERT INTO task_events (task_id, event, actor, at, details)
    SELECT id, 'completed', %(actor)s, %(now)s, {timing:done:now} FROM done
),
callbacks AS (
    {callback:done:task.completed}
)
SELECT id FROM done
