pub mod dynamodb;
