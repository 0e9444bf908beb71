/**
 * EC2's dated API versions and the version each action the simulator serves first appeared in.
 *
 * Versions: the "API Version" column of the Amazon EC2 User Guide's document history (2009-11-30 …
 * 2016-11-15, the current one; awsdocs/amazon-ec2-user-guide, doc_source/DocumentHistory.md) and, for the
 * older ones that page does not reach, the per-version list Mitch Garnaat kept from EC2's release notes
 * (garnaat/missingcloud, ec2_api_versions.json: 2006-06-26 … 2011-07-15). A version outside this list is
 * `NoSuchVersion` ("The requested version (X) of service AmazonEC2 does not exist", boto/boto3#1138).
 *
 * First versions: the same release-notes list (DescribeInstances/TerminateInstances 2006-06-26, the EBS
 * calls 2008-05-05, Start/StopInstances 2009-10-31, tags 2010-08-31, VM Import 2010-11-15); instance
 * status (DescribeInstanceStatus) is the 2011-11-01 entry of the User Guide's history. CancelConversionTask
 * is not in either list: the simulator assumes it came with the other VM Import calls in 2010-11-15.
 */

export const API_VERSIONS: readonly string[] = [
  '2006-06-26', '2006-10-01', '2007-01-03', '2007-01-19', '2007-03-01', '2007-08-29', '2008-02-01',
  '2008-05-05', '2008-08-08', '2008-12-01', '2009-03-01', '2009-04-04', '2009-07-15', '2009-08-15',
  '2009-10-31', '2009-11-30', '2010-06-15', '2010-08-31', '2010-11-15', '2011-01-01', '2011-02-28',
  '2011-05-15', '2011-07-15', '2011-11-01', '2011-12-01', '2011-12-15', '2012-04-01', '2012-05-01',
  '2012-06-01', '2012-06-15', '2012-07-20', '2012-08-15', '2012-10-01', '2012-12-01', '2013-02-01',
  '2013-06-15', '2013-07-15', '2013-08-15', '2013-10-01', '2013-10-15', '2014-02-01', '2014-05-01',
  '2014-06-15', '2014-09-01', '2014-10-01', '2015-03-01', '2015-04-15', '2015-10-01', '2016-04-01',
  '2016-09-15', '2016-11-15',
]; // prettier-ignore

export const CURRENT_VERSION = '2016-11-15';

export const FIRST_VERSION: Readonly<Record<string, string>> = {
  DescribeInstances: '2006-06-26',
  TerminateInstances: '2006-06-26',
  DescribeVolumes: '2008-05-05',
  DeleteVolume: '2008-05-05',
  AttachVolume: '2008-05-05',
  StartInstances: '2009-10-31',
  StopInstances: '2009-10-31',
  CreateTags: '2010-08-31',
  DescribeTags: '2010-08-31',
  ImportInstance: '2010-11-15',
  ImportVolume: '2010-11-15',
  DescribeConversionTasks: '2010-11-15',
  CancelConversionTask: '2010-11-15',
  DescribeInstanceStatus: '2011-11-01',
  // The same release-notes list: security groups 2006-06-26, Availability Zones 2008-02-01, and the VPC
  // calls merged into the EC2 API in 2011-01-01.
  DescribeSecurityGroups: '2006-06-26',
  DescribeAvailabilityZones: '2008-02-01',
  DescribeSubnets: '2011-01-01',
};
