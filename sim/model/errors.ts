/** An EC2 API error: the code and message EC2 would send. The protocol layer picks the HTTP status. */
export class Ec2Error extends Error {
  constructor(
    readonly code: string,
    message: string
  ) {
    super(message);
    this.name = code;
  }
}
