-- Complete held tasks in ONE autocommit statement (psycopg placeholders), returning their
-- records: the single-task completions the sidecar combines (combine.py), each item its own
-- call. Per item: the fencing check (the token is the task's current one), the consumer's task
-- types, the `completed` event with its timing and the task's result callback (the outbox row).
-- An item not returned was not completed: its caller then asks why (a read, off the hot path).
-- The items never name one task twice (the combiner keeps such calls apart).
-- {columns}, {timing:…} and {callback:…} are filled in by claim.statement().
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
      -- a dead letter keeps a token only when its lock ran out on the last attempt (see
      -- complete_batch_postgresql.sql): that holder may still complete it
      AND t.status IN ('locked', 'expired', 'failed')
      AND (CAST(%(task_types)s AS text[]) IS NULL OR t.task_type = ANY(CAST(%(task_types)s AS text[])))
    RETURNING {columns}
),
logged AS (
    INSERT INTO task_events (task_id, event, actor, at, details)
    SELECT id, 'completed', %(actor)s, %(now)s, {timing:done:now} FROM done
),
callbacks AS (
    {callback:done:task.completed}
)
SELECT * FROM done
