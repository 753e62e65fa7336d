-- Complete a batch in one statement. Each item counts only when its token is the task's
-- current one (fencing): a stale worker never completes a task somebody re-locked.
-- A `failed` row keeps a token only when the sweep dead-lettered it (its lock ran out on the
-- last attempt; fail and retry clear the token), so that holder may still complete it.
WITH items AS (
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:tokens AS uuid[]), CAST(:results AS jsonb[]))
        AS i(id, token, result)
),
done AS (
    UPDATE tasks AS t
    SET status = 'completed',
        completed_date = :now,
        completed_by = :actor,
        result = items.result,
        lock_token = NULL,
        locked_until = NULL,
        version = t.version + 1,
        updated_at = :now,
        updated_by = :actor
    FROM items
    WHERE t.id = items.id
      AND t.lock_token = items.token
      AND t.status IN ('locked', 'expired', 'failed')
    RETURNING t.id
),
logged AS (
    INSERT INTO task_events (task_id, event, actor, at, details)
    SELECT id, 'completed', :actor, :now, NULL FROM done
)
SELECT id FROM done
