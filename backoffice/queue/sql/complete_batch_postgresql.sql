-- complete_many_postgresql.sql in psycopg placeholders, plus the consumer's task types: a
-- batch in ONE autocommit statement. Ids not returned were not completed; the caller asks why.
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
    RETURNING t.id
),
logged AS (
    INSERT INTO task_events (task_id, event, actor, at, details)
    SELECT id, 'completed', %(actor)s, %(now)s, NULL FROM done
)
SELECT id FROM done
