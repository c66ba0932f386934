-- logctl_sketch_quantile(sketch, q): the q-quantile of a latency sketch written by logctl,
-- for people who use psql; logctl itself merges and reads sketches in the client
-- (src/analytics/sketch.rs, whose module documentation describes the format and the
-- accuracy). It returns the very estimate logctl computes, bit for bit: within 1% of what
-- percentile_disc(q) returns over the sketch's values, exact up to 57 ms. NULL for an
-- empty sketch, as percentile_disc gives over no rows.
--
--   SELECT logctl_sketch_quantile(sketch, 0.99) FROM ...;
--
-- The format: a version byte (1), then unsigned LEB128 numbers: the count of zeros, the
-- number of non-empty buckets and, unless the sketch is empty, min, max - min and sum,
-- then an (index, count) pair per bucket, each index but the first as the difference
-- from the previous one. Bucket i holds the integers in (γ^(i-1), γ^i] with γ = 101/99,
-- whose largest is div(101^i, 99^i), computed exactly in numeric.
CREATE OR REPLACE FUNCTION logctl_sketch_quantile(sketch bytea, q double precision)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $function$
DECLARE
    numbers bigint[] := '{}';
    number bigint := 0;
    shift integer := 0;
    current integer;
    zeros bigint;
    buckets bigint;
    smallest bigint;
    largest bigint;
    total bigint;
    wanted_rank bigint;
    seen bigint;
    bucket bigint := 0;
    lowest bigint;
    highest bigint;
BEGIN
    -- NaN is above every number in PostgreSQL, so it fails the upper bound.
    IF NOT (q >= 0 AND q <= 1) THEN
        RAISE EXCEPTION 'percentile value % is not between 0 and 1', q;
    END IF;
    IF length(sketch) = 0 OR get_byte(sketch, 0) <> 1 THEN
        RAISE EXCEPTION 'a latency sketch is in an unknown format (this function reads version 1)'
            USING HINT = 'Create logctl_sketch_quantile with the logctl that wrote the sketch (logctl schema).';
    END IF;
    FOR at IN 1 .. length(sketch) - 1 LOOP
        IF shift > 56 THEN
            RAISE EXCEPTION 'a latency sketch holds a number beyond bigint'
                USING HINT = 'Recompute the rollups of its time range with `logctl rollup rebuild`.';
        END IF;
        current := get_byte(sketch, at);
        number := number | ((current & 127)::bigint << shift);
        IF current < 128 THEN
            numbers := numbers || number;
            number := 0;
            shift := 0;
        ELSE
            shift := shift + 7;
        END IF;
    END LOOP;
    zeros := numbers[1];
    buckets := numbers[2];
    IF shift <> 0 OR buckets IS NULL
        OR cardinality(numbers) <> (CASE WHEN zeros + buckets = 0 THEN 2 ELSE 5 + 2 * buckets END)
    THEN
        RAISE EXCEPTION 'a latency sketch is corrupt (cut short, or bytes after its end)'
            USING HINT = 'Recompute the rollups of its time range with `logctl rollup rebuild`.';
    END IF;
    IF zeros + buckets = 0 THEN
        RETURN NULL;
    END IF;
    smallest := numbers[3];
    largest := numbers[3] + numbers[4];
    total := zeros;
    FOR pair IN 0 .. buckets - 1 LOOP
        total := total + numbers[7 + 2 * pair];
    END LOOP;
    -- The expression of percentile_disc itself, in the same floating point.
    wanted_rank := greatest(1, ceil(q * total::double precision))::bigint;
    IF zeros >= wanted_rank THEN
        RETURN 0;
    END IF;
    seen := zeros;
    FOR pair IN 0 .. buckets - 1 LOOP
        bucket := bucket + numbers[6 + 2 * pair];
        seen := seen + numbers[7 + 2 * pair];
        IF seen >= wanted_rank THEN
            IF bucket > 1075 THEN
                RAISE EXCEPTION 'a latency sketch is corrupt (a bucket beyond the last)'
                    USING HINT = 'Recompute the rollups of its time range with `logctl rollup rebuild`.';
            END IF;
            lowest := CASE WHEN bucket = 0 THEN 1
                           ELSE div(101::numeric ^ (bucket - 1), 99::numeric ^ (bucket - 1)) + 1 END;
            highest := div(101::numeric ^ bucket, 99::numeric ^ bucket);
            lowest := greatest(lowest, smallest);
            highest := least(highest, largest);
            RETURN (2 * lowest * highest)::double precision / (lowest + highest)::double precision;
        END IF;
    END LOOP;
    RETURN largest;
END
$function$;
