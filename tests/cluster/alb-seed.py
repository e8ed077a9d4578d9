"""Gives a fresh moto server what the AWS Load Balancer Controller needs before it makes an ALB.

A VPC whose range holds the local cluster's pod CIDRs (so pod IPs are IP targets inside the VPC),
one subnet per zone (node i's pod CIDR 10.244.i.0/24) tagged for internet-facing ELBs and for the cluster, an internet gateway as
the default route (public subnets), an EC2 instance per KWOK node (its providerID) whose ENI holds the node's pod IPs, and an ACM
certificate for *.DOMAIN that moto issues at once (MOTO_ACM_VALIDATION_WAIT=0 on the server).

The real node (tests/cluster/realnode.sh), when REALNODE_POD_CIDR names its pod range
(10.N.1.0/24), is an EC2 instance too, as on EKS: its range becomes a secondary block of the VPC
and a subnet of the first zone (not tagged for load balancers, so the ALB never lands there), and
the instance's ENI holds the pod IPs. Without an instance the controller cannot resolve the
node's providerID, and its network reconcile of every real pod behind an IP target group fails
("providerID is not specified for node: realnode"), every 15 s.

Usage: [REALNODE_POD_CIDR=10.N.1.0/24] python alb-seed.py ENDPOINT CLUSTER DOMAIN ZONE... ;
prints shell assignments (VPC_ID=..., INSTANCE_<zone index>=..., REALNODE_INSTANCE=...,
REALNODE_ZONE=..., CERTIFICATE_ARN=...) for alb-controller.sh to read.
Runs with the boto3 that moto itself depends on; nothing here is jockey code.
"""

import ipaddress
import os

import sys

import boto3

endpoint, cluster, domain, *zones = sys.argv[1:]
region = zones[0][:-1]
session = boto3.session.Session(
    aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
)
ec2 = session.client("ec2", endpoint_url=endpoint)
acm = session.client("acm", endpoint_url=endpoint)


def tags(kind, pairs):
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in pairs.items()]}]


vpc = ec2.create_vpc(
    CidrBlock="10.244.0.0/16",
    TagSpecifications=tags("vpc", {"Name": f"{cluster}-local"}),
)["Vpc"]["VpcId"]
igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
main_rt = ec2.describe_route_tables(
    Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]
)["RouteTables"][0]["RouteTableId"]
ec2.create_route(RouteTableId=main_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)

image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
out = {"VPC_ID": vpc}
for i, zone in enumerate(zones):
    # Node i's pod CIDR (tests/cluster/up.sh) is 10.244.i.0/24: the subnet of its zone.
    subnet = ec2.create_subnet(
        VpcId=vpc,
        CidrBlock=f"10.244.{i}.0/24",
        AvailabilityZone=zone,
        TagSpecifications=tags(
            "subnet",
            {
                "Name": f"{cluster}-{zone}",
                "kubernetes.io/role/elb": "1",
                f"kubernetes.io/cluster/{cluster}": "shared",
            },
        ),
    )["Subnet"]["SubnetId"]
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.medium",
        SubnetId=subnet,
        PrivateIpAddress=f"10.244.{i}.254",
        TagSpecifications=tags("instance", {"Name": f"kwok-node-{i}"}),
    )["Instances"][0]
    # As the VPC CNI does, pod IPs are secondary addresses of the node's ENI: the controller
    # finds a target's ENI (and its security groups) that way. KWOK hands out pod IPs from the
    # bottom of the node's range; the top stays free so the ALB still finds room in the subnet.
    ec2.assign_private_ip_addresses(
        NetworkInterfaceId=instance["NetworkInterfaces"][0]["NetworkInterfaceId"],
        PrivateIpAddresses=[f"10.244.{i}.{host}" for host in range(2, 201)],
    )
    instance = instance["InstanceId"]
    out[f"SUBNET_{i}"] = subnet
    out[f"INSTANCE_{i}"] = instance

realnode_pods = os.environ.get("REALNODE_POD_CIDR", "")
if realnode_pods:
    net = ipaddress.ip_network(realnode_pods)
    hosts = list(net.hosts())
    ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock=str(net))
    subnet = ec2.create_subnet(
        VpcId=vpc,
        CidrBlock=str(net),
        AvailabilityZone=zones[0],
        TagSpecifications=tags("subnet", {"Name": f"{cluster}-realnode"}),
    )["Subnet"]["SubnetId"]
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.medium",
        SubnetId=subnet,
        PrivateIpAddress=str(hosts[-1]),
        TagSpecifications=tags("instance", {"Name": "realnode"}),
    )["Instances"][0]
    # The node's CNI (host-local) hands out pod IPs from the bottom of its range, after the
    # bridge's .1: they are secondary addresses of the instance's ENI, as the VPC CNI makes them.
    ec2.assign_private_ip_addresses(
        NetworkInterfaceId=instance["NetworkInterfaces"][0]["NetworkInterfaceId"],
        PrivateIpAddresses=[str(h) for h in hosts[1:200]],
    )
    out["REALNODE_INSTANCE"] = instance["InstanceId"]
    out["REALNODE_ZONE"] = zones[0]

out["CERTIFICATE_ARN"] = acm.request_certificate(
    DomainName=f"*.{domain}", ValidationMethod="DNS"
)["CertificateArn"]
for k, v in out.items():
    print(f"{k}={v}")
