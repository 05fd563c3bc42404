import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { BedState } from '../bed/src/bed.ts';

// The bed's DynamoDB Local and ElasticMQ accept any credentials; the region is the bed's.
const credentials = { accessKeyId: 'bed', secretAccessKey: 'bed' };

export function bedDynamoDb(bed: BedState): DynamoDBClient {
  return new DynamoDBClient({ endpoint: bed.dynamodb.endpoint, region: bed.region, credentials });
}

export function bedSqs(bed: BedState): SQSClient {
  return new SQSClient({ endpoint: bed.sqs.endpoint, region: bed.region, credentials });
}
