"""Pure logic for the CDN check: does the distribution fail over from the primary region's origins to
the standby's (origins.py)? The engine wires it to CloudFront's GetDistributionConfig."""
