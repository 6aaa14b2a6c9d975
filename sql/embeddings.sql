-- recpipe: the model's embeddings into PostgreSQL + pgvector on Amazon RDS, from S3.
--
-- The same tables, columns, dimension and indexes as `recpipe vectors load`
-- (src/recpipe/contracts/vectors.py; tests/integration/test_vectors_sql.py keeps the two equal).
-- Run with psql as a user allowed to create extensions (rds_superuser), the RDS instance
-- having an IAM role that can read the artifacts bucket:
--
--   psql "$DATABASE_URL" -v bucket=my-ml-artifacts -v prefix= -v region=us-east-1 \
--        -f sql/embeddings.sql
--
-- `prefix` is where `embeddings/` lives inside the bucket: empty for a bucket of its own,
-- else ending in a slash (e.g. ml-artifacts/). Everything between BEGIN and COMMIT is one
-- transaction: readers keep the previous tables until it commits; an error changes nothing.

\set ON_ERROR_STOP on

CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS aws_s3 CASCADE;

BEGIN;

-- A database `recpipe vectors load` manages keeps every loaded model in its own tables and
-- item_emb/user_emb as views of the serving one's (src/recpipe/contracts/models.py): those
-- views give way to this script's plain tables, which the seed's clients read. recpipe's own
-- service keeps serving the model its registry names until the next `recpipe vectors load`.
DO $$ BEGIN
  IF (SELECT relkind FROM pg_class WHERE oid = to_regclass('item_emb')) = 'v' THEN DROP VIEW item_emb; END IF;
  IF (SELECT relkind FROM pg_class WHERE oid = to_regclass('user_emb')) = 'v' THEN DROP VIEW user_emb; END IF;
END $$;

DROP TABLE IF EXISTS item_emb;
DROP TABLE IF EXISTS user_emb;

CREATE TABLE item_emb (id varchar PRIMARY KEY, embedding vector(32) NOT NULL, product_line varchar, quantity_in_stock integer);
CREATE TABLE user_emb (id integer PRIMARY KEY, embedding vector(32) NOT NULL);

SELECT aws_s3.table_import_from_s3(
  'item_emb', 'id,embedding', '(format csv, header true)',
  aws_commons.create_s3_uri(:'bucket', :'prefix' || 'embeddings/item_embeddings.csv', :'region'));
SELECT aws_s3.table_import_from_s3(
  'user_emb', 'id,embedding', '(format csv, header true)',
  aws_commons.create_s3_uri(:'bucket', :'prefix' || 'embeddings/user_embeddings.csv', :'region'));

-- the attributes filters need (in stock, product line), as of the training data
CREATE TEMP TABLE item_attributes (id varchar PRIMARY KEY, product_line varchar, quantity_in_stock integer) ON COMMIT DROP;
SELECT aws_s3.table_import_from_s3(
  'item_attributes', 'id,product_line,quantity_in_stock', '(format csv, header true)',
  aws_commons.create_s3_uri(:'bucket', :'prefix' || 'embeddings/item_attributes.csv', :'region'));
UPDATE item_emb SET product_line = a.product_line, quantity_in_stock = a.quantity_in_stock
  FROM item_attributes a WHERE a.id = item_emb.id;

SET LOCAL maintenance_work_mem = '1GB';
CREATE INDEX item_emb_embedding_hnsw ON item_emb USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 128);
CREATE INDEX item_emb_product_line ON item_emb (product_line);
CREATE INDEX user_emb_embedding_hnsw ON user_emb USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 128);
ANALYZE item_emb;
ANALYZE user_emb;

COMMIT;
