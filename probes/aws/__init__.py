"""AWS probes: STS identity and role assumption, Secrets Manager reads, S3 reads (boto3)."""
