-- On Citus: one value of log_events.spread for each shard (the smallest that the shard
-- takes; among 64 values a shard, every shard gets some), in shard order, which
-- alternates between the workers. A load gives its batches these in turn.
SELECT array_agg(key ORDER BY shard)
FROM (SELECT get_shard_id_for_distribution_column('log_events', v) AS shard, min(v) AS key
      FROM generate_series(0, 64 * (SELECT count(*)::integer FROM pg_dist_shard
                                    WHERE logicalrelid = 'log_events'::regclass) - 1) AS v
      GROUP BY 1) AS shards
