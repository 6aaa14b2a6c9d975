output "job_name" {
  description = "The ETL job."
  value       = aws_glue_job.etl.name
}

output "catalog_table" {
  description = "database.table of the training set in the Glue catalog."
  value       = "${aws_glue_catalog_database.this.name}.${aws_glue_catalog_table.training.name}"
}
